package descope

// discovery.go is Descope's discovery document: fetched in the background
// from the configured URL, checked to declare an issuer of the configured
// project, forwarded on this server's well-known routes, and the source of
// the authorization server the protected-resource metadata names.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// metadataCache holds Descope's authorization-server metadata. It loads it
// in the background when the provider starts (retrying with backoff until
// the first success, then every ttl), keeps the last good copy, refreshes
// it on a request once stale, serves the stale copy while Descope fails,
// and answers 502 only when no copy was ever fetched.
//
// A document is good when it declares an issuer the protected-resource
// metadata may name (issuerForms.advertisable): the configured issuer, or
// another form of the same project, as when Descope serves an MCP Server's
// discovery under the agentic path but declares the project-level issuer.
// A document declaring any other issuer is neither forwarded nor followed.
type metadataCache struct {
	client  *http.Client
	url     string
	ttl     time.Duration
	log     *slog.Logger
	forms   *issuerForms
	onDoc   func(issuer string) // called after each good fetch
	life    context.Context
	fetches *refresher
	stopped chan struct{}
	failing atomic.Bool

	mu        sync.RWMutex
	doc       []byte
	fetchedAt time.Time
}

// metadataRetryGap is the least time between two fetches after a failure,
// and between two background refreshes.
const metadataRetryGap = 5 * time.Second

type metadataConfig struct {
	client  *http.Client
	url     string
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger
	forms   *issuerForms
	onDoc   func(issuer string)
}

func newMetadataCache(life context.Context, cfg metadataConfig) *metadataCache {
	m := &metadataCache{
		client: cfg.client, url: cfg.url, ttl: cfg.ttl, log: cfg.log, forms: cfg.forms, onDoc: cfg.onDoc,
		life: life, stopped: make(chan struct{}),
	}
	m.fetches = newRefresher(life, cfg.timeout, m.load)
	return m
}

func (m *metadataCache) startBackground() {
	go func() {
		defer close(m.stopped)
		retry := firstRetry
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-m.life.Done():
				return
			case <-timer.C:
			}
			if done := m.fetches.start(0); done != nil {
				select {
				case <-done:
				case <-m.life.Done():
					return
				}
			}
			next := max(m.ttl, metadataRetryGap)
			if doc, _ := m.current(); doc == nil {
				next = retry + rand.N(retry/2+1)
				retry = min(2*retry, maxRetry)
			} else if m.failing.Load() {
				next = min(next, maxRetry)
			}
			timer.Reset(next)
		}
	}()
}

func (m *metadataCache) waitStopped() { <-m.stopped }

func (m *metadataCache) load(ctx context.Context) error {
	body, err := fetchLimited(ctx, m.client, m.url, maxFetchBytes)
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err == nil {
		if err = json.Unmarshal(body, &doc); err == nil && doc.Issuer == "" {
			err = fmt.Errorf("GET %s: metadata has no issuer", m.url)
		}
	}
	if err == nil && !m.forms.advertisable(doc.Issuer) {
		m.failing.Store(true)
		m.log.Warn("descope: the discovery document declares an issuer that is not one of the configured project's; "+
			"it is not forwarded, and the protected-resource metadata keeps the configured issuer. "+
			"If its host is your custom domain, list its origin in Config.IssuerOrigins (DESCOPE_ISSUER_ORIGINS)",
			"url", m.url, "declared_issuer", doc.Issuer)
		return fmt.Errorf("GET %s: foreign issuer %q", m.url, doc.Issuer)
	}
	if err != nil {
		if ctx.Err() != nil && m.life.Err() != nil {
			return err // shutting down
		}
		m.failing.Store(true)
		m.log.Warn("descope: cannot fetch authorization-server metadata", "err", err)
		return err
	}
	m.mu.Lock()
	m.doc, m.fetchedAt = body, time.Now()
	m.mu.Unlock()
	m.failing.Store(false)
	if m.onDoc != nil {
		m.onDoc(doc.Issuer)
	}
	return nil
}

func (m *metadataCache) current() ([]byte, time.Time) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.doc, m.fetchedAt
}

func (m *metadataCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if setDiscoveryHeaders(w, r) {
		return
	}
	doc, at := m.current()
	switch {
	case doc == nil:
		m.fetches.wait(r.Context(), metadataRetryGap)
		doc, _ = m.current()
	case time.Since(at) > m.ttl:
		m.fetches.start(metadataRetryGap) // serve the stale copy meanwhile
	}
	if doc == nil {
		writeJSONError(w, http.StatusBadGateway, "temporarily_unavailable",
			"The authorization server metadata cannot be fetched right now. Retry later.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(doc)
	}
}
