package descope

// keys.go is the project's signing keys: their background loading and
// refreshing, on-demand refreshes for unknown key IDs, and which keys of a
// published set are usable.

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
)

// KeyStatus reports on the provider's signing keys, for health and
// readiness checks.
type KeyStatus struct {
	// Loaded is true once a key set has loaded; until then the MCP
	// endpoint answers 503.
	Loaded bool
	// Keys is the number of usable keys in the current set.
	Keys int
	// LastRefresh is when keys last loaded successfully (zero if never).
	LastRefresh time.Time
	// Failing is true when the latest refresh failed; the keys loaded
	// before stay in use.
	Failing bool
}

// KeyStatus reports whether signing keys are loaded and when they last
// refreshed. A readiness probe can require Loaded.
func (p *Provider) KeyStatus() KeyStatus {
	st := KeyStatus{Failing: p.keys.failing.Load(), Keys: int(p.keys.count.Load())}
	if at := p.keys.loaded.Load(); at != 0 {
		st.Loaded = true
		st.LastRefresh = time.Unix(0, at)
	}
	return st
}

// keySet holds the project's signing keys. It loads them in the background
// (retrying with backoff until the first success, then every refreshEvery)
// and on demand for unknown key IDs. A failed refresh keeps the keys it had.
type keySet struct {
	cfg     keySetConfig
	life    context.Context
	keys    atomic.Pointer[keyfunc.Keyfunc]
	fetches *refresher
	stopped chan struct{}
	loaded  atomic.Int64 // unix nanoseconds of the last successful load
	count   atomic.Int64 // keys in the current set
	failing atomic.Bool  // the last refresh failed
}

type keySetConfig struct {
	url          string
	client       *http.Client
	timeout      time.Duration
	refreshEvery time.Duration
	minGap       time.Duration
	log          *slog.Logger
	onLoad       func(kids map[string]bool) // called after each successful load
}

// Backoff bounds while no key has ever loaded.
const (
	firstRetry = 500 * time.Millisecond
	maxRetry   = 30 * time.Second
)

func newKeySet(life context.Context, cfg keySetConfig) *keySet {
	k := &keySet{cfg: cfg, life: life, stopped: make(chan struct{})}
	k.fetches = newRefresher(life, cfg.timeout, k.load)
	return k
}

// current returns the loaded keys, or nil before the first load.
func (k *keySet) current() keyfunc.Keyfunc {
	if p := k.keys.Load(); p != nil {
		return *p
	}
	return nil
}

// refresh fetches the keys again on behalf of a request (none loaded yet,
// or a token with an unknown key ID), unless a fetch started less than
// minGap ago; it joins a fetch in flight and waits at most until ctx ends.
// It reports whether a fetch ended while it waited.
func (k *keySet) refresh(ctx context.Context) bool {
	return k.fetches.wait(ctx, k.cfg.minGap)
}

func (k *keySet) startBackground() {
	go func() {
		defer close(k.stopped)
		retry := firstRetry
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-k.life.Done():
				return
			case <-timer.C:
			}
			if done := k.fetches.start(0); done != nil {
				select {
				case <-done:
				case <-k.life.Done():
					return
				}
			}
			next := k.cfg.refreshEvery
			if k.current() == nil {
				next = retry + rand.N(retry/2+1)
				retry = min(2*retry, maxRetry)
			} else if k.failing.Load() {
				next = min(k.cfg.refreshEvery, maxRetry)
			} else {
				retry = firstRetry
			}
			timer.Reset(next)
		}
	}()
}

func (k *keySet) waitStopped() { <-k.stopped }

// load fetches and installs the key set.
func (k *keySet) load(ctx context.Context) error {
	body, err := fetchLimited(ctx, k.cfg.client, k.cfg.url, maxFetchBytes)
	if err == nil {
		var kf keyfunc.Keyfunc
		var kids map[string]bool
		if kf, kids, err = parseKeySet(body); err == nil {
			first := k.current() == nil
			k.keys.Store(&kf)
			k.loaded.Store(time.Now().UnixNano())
			k.count.Store(int64(len(kids)))
			if k.cfg.onLoad != nil {
				k.cfg.onLoad(kids)
			}
			if k.failing.Swap(false) || first {
				k.cfg.log.Info("descope: signing keys loaded", "keys", len(kids))
			}
			return nil
		}
	}
	if ctx.Err() != nil && k.life.Err() != nil {
		return err // shutting down
	}
	k.failing.Store(true)
	if k.current() == nil {
		k.cfg.log.Error("descope: cannot load signing keys; the MCP endpoint answers 503 until they load", "err", err)
	} else {
		k.cfg.log.Warn("descope: key refresh failed; keeping the keys loaded before", "err", err)
	}
	return err
}

// parseKeySet keeps the usable signing keys of a JWK set: public keys with
// a key ID, meant for signatures, of a type an allowed algorithm can use
// (RSA of at least 2048 bits, EC, OKP). A set with none is an error, so a
// bad answer never wipes out good keys.
func parseKeySet(body []byte) (keyfunc.Keyfunc, map[string]bool, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("key set is not valid JSON: %w", err)
	}
	store := jwkset.NewMemoryStorage()
	ctx := context.Background()
	kids := make(map[string]bool)
	for _, m := range set.Keys {
		if m.KID == "" || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		if m.KTY != jwkset.KtyRSA && m.KTY != jwkset.KtyEC && m.KTY != jwkset.KtyOKP {
			continue
		}
		// Only public parts are read, even if a private key was published.
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		if pub, ok := jwk.Key().(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
			continue
		}
		if kids[m.KID] {
			continue // a duplicate key ID is ambiguous; the first one wins
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			continue
		}
		kids[m.KID] = true
	}
	if len(kids) == 0 {
		return nil, nil, errors.New("key set has no usable signing key")
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store})
	return kf, kids, err
}
