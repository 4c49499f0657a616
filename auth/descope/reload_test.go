package descope_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// bound is how long a test waits for something that should happen at once
// before it gives up; it is a guard against hanging, not a speed check.
const bound = 10 * time.Second

// recv receives from ch, failing the test if nothing comes within bound.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("%s: nothing within %v", what, bound)
		var zero T
		return zero
	}
}

// keyGate fronts a fake Descope. While hold is on, each key-set request is
// answered with the key set as it was when the request arrived, but only
// once the test sends on release; arrived tells the test a request is held.
type keyGate struct {
	ds       *descopetest.Server
	srv      *httptest.Server
	hold     atomic.Bool
	requests atomic.Int64 // key-set requests received
	arrived  chan struct{}
	release  chan struct{}
	closing  chan struct{}
}

func newKeyGate(t *testing.T, ds *descopetest.Server) *keyGate {
	t.Helper()
	g := &keyGate{ds: ds, arrived: make(chan struct{}, 16), release: make(chan struct{}), closing: make(chan struct{})}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		close(g.closing) // lets held requests go, so Close does not wait for them
		g.srv.Close()
	})
	return g
}

func (g *keyGate) serve(w http.ResponseWriter, r *http.Request) {
	jwks := strings.HasSuffix(r.URL.Path, "/jwks.json")
	if jwks {
		g.requests.Add(1)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, g.ds.URL()+r.URL.Path, nil)
	if err != nil {
		http.Error(w, "upstream", http.StatusBadGateway)
		return
	}
	resp, err := g.ds.Client().Do(req)
	if err != nil {
		http.Error(w, "upstream", http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if jwks && g.hold.Load() {
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		case <-g.closing:
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// issuer is the issuer of a provider configured through the gate.
func (g *keyGate) issuer() string {
	return g.srv.URL + "/v1/apps/agentic/" + g.ds.ProjectID() + "/" + g.ds.MCPServerID()
}

// mint makes a token the provider behind the gate accepts.
func (g *keyGate) mint(claims map[string]any) string {
	c := map[string]any{"aud": []string{resourceURL}, "iss": g.issuer()}
	for k, v := range claims {
		c[k] = v
	}
	return g.ds.Mint(c)
}

// newGatedFixture is newFixture with the provider fetching keys through a
// keyGate. When it returns, the keys have loaded, the background loader has
// made its first fetch (the next is KeyRefreshInterval away), the gate has
// seen exactly one key-set request and holds nothing.
func newGatedFixture(t *testing.T, cfg descope.Config) (*fixture, *keyGate) {
	t.Helper()
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	g := newKeyGate(t, ds)
	g.hold.Store(true)
	cfg.WellKnownURL = g.issuer()
	cfg.ServerURL = "https://mcp.example.com"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := descope.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	// The background loader's first fetch is the only one so far.
	recv(t, g.arrived, "the background loader's first fetch")
	g.hold.Store(false)
	g.release <- struct{}{}
	// Until that fetch has installed the keys it is in flight, and a
	// token's check waits for it rather than fetching again.
	_, err = p.VerifyToken(context.Background(), g.mint(nil))
	require.NoError(t, err)
	require.Equal(t, int64(1), g.requests.Load())

	srv := httptest.NewServer(auth.Handler(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := descope.ClaimsFromContext(r.Context())
		_, _ = io.WriteString(w, c.Subject+" ")
	})))
	t.Cleanup(srv.Close)
	return &fixture{ds: ds, p: p, srv: srv}, g
}

// TestReloadKeysStopsARemovedKeyAtOnce: a key taken out of Descope's key
// set keeps verifying tokens, cached or not, until the next refresh;
// ReloadKeys is that refresh, now.
func TestReloadKeysStopsARemovedKeyAtOnce(t *testing.T) {
	f, g := newGatedFixture(t, descope.Config{}) // default refresh interval: no background refresh during the test
	removed := f.ds.SigningKeyID()
	cached := g.mint(map[string]any{"jti": "cached"})
	fresh := g.mint(map[string]any{"jti": "fresh"})
	unseen := g.mint(map[string]any{"jti": "unseen"})
	resp, _ := f.post(t, "Bearer "+cached)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, 2, descope.TokenCacheLen(f.p), "the fixture's token and this one, both of the key to remove")

	f.ds.RotateKey()
	f.ds.RemoveKey(removed)
	byNewKey := g.mint(nil)

	tests := []struct {
		name   string
		token  string
		before int // status before ReloadKeys; 0: not sent then
		after  int
		reason string // VerifyToken's refusal reason after ReloadKeys
	}{
		{name: "removed key's token cached before the removal", token: cached, before: 200, after: 401, reason: "unknown_key"},
		{name: "removed key's token first checked after the removal", token: fresh, before: 200, after: 401, reason: "unknown_key"},
		{name: "removed key's token first checked after ReloadKeys", token: unseen, after: 401, reason: "unknown_key"},
		{name: "token of the new key", token: byNewKey, after: 200},
	}
	for _, tc := range tests {
		if tc.before == 0 {
			continue
		}
		resp, body := f.post(t, "Bearer "+tc.token)
		assert.Equal(t, tc.before, resp.StatusCode, "before ReloadKeys: %s", tc.name)
		assert.Equal(t, descopetest.DefaultUserID+" ", body, "before ReloadKeys: %s", tc.name)
	}

	fetches := g.requests.Load()
	require.NoError(t, f.p.ReloadKeys(context.Background()))
	assert.Equal(t, fetches+1, g.requests.Load(), "one fetch")
	assert.Equal(t, 1, f.p.KeyStatus().Keys)
	assert.Equal(t, 0, descope.TokenCacheLen(f.p), "the removed key's cached tokens are gone")

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.post(t, "Bearer "+tc.token)
			assert.Equal(t, tc.after, resp.StatusCode)
			if tc.after == 401 {
				assert.Equal(t, challengeInvalidNoScope, resp.Header.Get("WWW-Authenticate"))
				assert.Equal(t, bodyInvalid, body)
				_, err := f.p.VerifyToken(context.Background(), tc.token)
				requireReason(t, err, tc.reason)
			} else {
				assert.Equal(t, descopetest.DefaultUserID+" ", body)
			}
		})
	}
}

// TestReloadKeysFailureKeepsTheKeys: when Descope cannot give a usable key
// set, ReloadKeys says so and the keys loaded before stay in use.
func TestReloadKeysFailureKeepsTheKeys(t *testing.T) {
	tests := []struct {
		name    string
		cfg     descope.Config
		breakIt func(g *keyGate)
	}{
		{name: "503", breakIt: func(g *keyGate) { g.ds.SetJWKSFault(descopetest.FaultUnavailable) }},
		{name: "not JSON", breakIt: func(g *keyGate) { g.ds.SetJWKSFault(descopetest.FaultGarbage) }},
		{name: "empty key set", breakIt: func(g *keyGate) { g.ds.SetJWKSFault(descopetest.FaultEmpty) }},
		{name: "hangs past FetchTimeout", cfg: descope.Config{FetchTimeout: 200 * time.Millisecond},
			breakIt: func(g *keyGate) { g.ds.SetJWKSFault(descopetest.FaultHang) }},
		{name: "unreachable", breakIt: func(g *keyGate) { g.srv.Close() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, g := newGatedFixture(t, tc.cfg)
			first := g.mint(map[string]any{"jti": "first"})
			later := g.mint(map[string]any{"jti": "later"})
			resp, _ := f.post(t, "Bearer "+first)
			require.Equal(t, 200, resp.StatusCode)

			tc.breakIt(g)
			err := f.p.ReloadKeys(context.Background())
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "descope: signing keys not reloaded: "), err.Error())
			assert.NotErrorIs(t, err, context.Canceled)

			st := f.p.KeyStatus()
			assert.True(t, st.Loaded)
			assert.True(t, st.Failing)
			assert.Equal(t, 1, st.Keys)
			for _, tok := range []string{first, later} {
				resp, body := f.post(t, "Bearer "+tok)
				assert.Equal(t, 200, resp.StatusCode, "the old key still verifies")
				assert.Equal(t, descopetest.DefaultUserID+" ", body)
			}
		})
	}
}

// TestReloadKeysHonoursContext: a caller whose context ends gets its error
// at once, whatever the fetch is doing.
func TestReloadKeysHonoursContext(t *testing.T) {
	tests := []struct {
		name      string
		heldFetch bool // the fetch is held at Descope when the context ends
		want      error
	}{
		{name: "cancelled before the call", want: context.Canceled},
		{name: "cancelled while the fetch hangs", heldFetch: true, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, g := newGatedFixture(t, descope.Config{FetchTimeout: time.Hour})
			requests := g.requests.Load()
			g.hold.Store(true)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if !tc.heldFetch {
				cancel()
			}
			done := make(chan error, 1)
			go func() { done <- f.p.ReloadKeys(ctx) }()
			if tc.heldFetch {
				recv(t, g.arrived, "key-set request")
				cancel()
			}
			err := recv(t, done, "ReloadKeys to return")
			require.ErrorIs(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "descope: signing keys not reloaded: "), err.Error())
			if !tc.heldFetch {
				assert.Equal(t, requests, g.requests.Load(), "no fetch for a context that had ended")
			}
			resp, _ := f.post(t, "Bearer "+g.mint(nil))
			assert.Equal(t, 200, resp.StatusCode, "the keys loaded before stay")
		})
	}
}

// TestReloadKeysWaitsForAFetchThatStartsAfterIt: a fetch already in flight
// may carry the key set from before the key was removed, so ReloadKeys does
// not settle for it: it waits for it, then for one fetch of its own.
func TestReloadKeysWaitsForAFetchThatStartsAfterIt(t *testing.T) {
	tests := []struct {
		name     string
		inFlight func(t *testing.T, f *fixture, g *keyGate, settled <-chan struct{}) // starts the fetch in flight
	}{
		{name: "another ReloadKeys", inFlight: func(t *testing.T, f *fixture, g *keyGate, settled <-chan struct{}) {
			go func() { _ = f.p.ReloadKeys(context.Background()) }()
			recv(t, settled, "first ReloadKeys to wait")
		}},
		{name: "a token with an unknown key ID", inFlight: func(_ *testing.T, f *fixture, g *keyGate, _ <-chan struct{}) {
			go func() {
				_, _ = f.p.VerifyToken(context.Background(), g.ds.MintWithHeader(map[string]any{"kid": "unknown"}, nil))
			}()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, g := newGatedFixture(t, descope.Config{MinKeyRefreshGap: time.Nanosecond})
			settled := make(chan struct{}, 4)
			descope.OnReloadWaiting(f.p, func() { settled <- struct{}{} })
			removed := g.ds.SigningKeyID()
			tok := g.mint(nil)

			g.hold.Store(true)
			tc.inFlight(t, f, g, settled)
			recv(t, g.arrived, "the fetch in flight") // it holds the key set with the key
			g.ds.RotateKey()
			g.ds.RemoveKey(removed)

			done := make(chan error, 1)
			go func() { done <- f.p.ReloadKeys(context.Background()) }()
			recv(t, settled, "ReloadKeys to wait")
			g.release <- struct{}{} // the fetch in flight ends, with the old key set
			select {
			case <-g.arrived:
				g.release <- struct{}{}
			case err := <-done:
				t.Fatalf("ReloadKeys returned (%v) on a fetch that started before it was called", err)
			case <-time.After(bound):
				t.Fatal("no second fetch")
			}
			require.NoError(t, recv(t, done, "ReloadKeys to return"))
			assert.Equal(t, int64(3), g.requests.Load(), "the first load, the fetch in flight, ReloadKeys' own")
			g.hold.Store(false)

			resp, body := f.post(t, "Bearer "+tok)
			assert.Equal(t, 401, resp.StatusCode)
			assert.Equal(t, challengeInvalidNoScope, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, bodyInvalid, body)
		})
	}
}

// TestConcurrentReloadsShareOneFetch: callers that arrive while a fetch is
// in flight share the one fetch that follows it.
func TestConcurrentReloadsShareOneFetch(t *testing.T) {
	f, g := newGatedFixture(t, descope.Config{})
	const callers = 20
	settled := make(chan struct{}, callers)
	descope.OnReloadWaiting(f.p, func() { settled <- struct{}{} })
	before := g.requests.Load()
	g.hold.Store(true)

	done := make(chan error, callers)
	reload := func() { done <- f.p.ReloadKeys(context.Background()) }
	go reload()
	recv(t, settled, "first caller to wait")
	recv(t, g.arrived, "first fetch")
	for i := 1; i < callers; i++ {
		go reload()
	}
	for i := 1; i < callers; i++ {
		recv(t, settled, "a caller to wait")
	}
	g.release <- struct{}{}
	recv(t, g.arrived, "the shared fetch")
	g.release <- struct{}{}
	for i := 0; i < callers; i++ {
		assert.NoError(t, recv(t, done, "a caller to return"))
	}
	assert.Equal(t, before+2, g.requests.Load(), "twenty callers, two fetches")
}

// TestReloadKeysAfterClose fails without fetching.
func TestReloadKeysAfterClose(t *testing.T) {
	f, g := newGatedFixture(t, descope.Config{})
	before := g.requests.Load()
	require.NoError(t, f.p.Close())
	err := f.p.ReloadKeys(context.Background())
	require.EqualError(t, err, "descope: signing keys not reloaded: the provider is closed")
	assert.Equal(t, before, g.requests.Load())
	assert.False(t, errors.Is(err, context.Canceled))
}
