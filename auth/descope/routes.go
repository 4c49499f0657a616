package descope

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/mcp-go-contrib/descope/auth"
)

// prmPath is the RFC 9728 well-known prefix.
const prmPath = "/.well-known/oauth-protected-resource"

// Well-known paths where older clients look for authorization-server
// metadata on the MCP server's own origin.
const (
	asMetadataPath   = "/.well-known/oauth-authorization-server"
	oidcMetadataPath = "/.well-known/openid-configuration"
)

// resourceMetadata is the RFC 9728 document.
type resourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	// RFC 9728 §2: the proof algorithms accepted, and whether every token
	// must be DPoP-bound.
	DPoPAlgorithms    []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundRequired bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

func (p *Provider) buildRoutes(c *normalized) []auth.Route {
	doc, err := json.Marshal(resourceMetadata{
		Resource:               c.resource.URL,
		AuthorizationServers:   []string{c.issuer},
		ScopesSupported:        c.scopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           c.ResourceName,
		ResourceDocumentation:  c.ResourceDocumentation,
		DPoPAlgorithms:         c.DPoP.AlgorithmsSupported(),
		DPoPBoundRequired:      c.DPoP.Mode == auth.DPoPRequired,
	})
	if err != nil {
		panic("descope: cannot encode resource metadata: " + err.Error()) // only strings: cannot happen
	}
	prm := staticJSON(doc)
	u, _ := url.Parse(c.resource.MetadataURL)
	routes := []auth.Route{{Path: u.Path, Handler: prm}}
	if u.Path != prmPath {
		routes = append(routes, auth.Route{Path: prmPath, Handler: prm})
	}
	return append(routes,
		auth.Route{Path: asMetadataPath, Handler: p.metadata},
		auth.Route{Path: oidcMetadataPath, Handler: p.metadata},
	)
}

// setDiscoveryHeaders lets any origin read a public discovery document and
// answers what a CORS preflight asks. It reports whether the request is
// finished (a preflight or a method that is not allowed).
func setDiscoveryHeaders(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return false
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "*")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return true
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "Use GET for this document.")
		return true
	}
}

// staticJSON serves a document fixed at start-up.
type staticJSON []byte

func (d staticJSON) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if setDiscoveryHeaders(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Content-Length", strconv.Itoa(len(d)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d)
	}
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// metadataCache forwards Descope's authorization-server metadata. It keeps
// the last good copy for ttl, refreshes it in the background once stale,
// serves the stale copy while Descope fails, and answers 502 only when no
// copy was ever fetched.
type metadataCache struct {
	client  *http.Client
	url     string
	ttl     time.Duration
	log     *slog.Logger
	fetches *refresher

	mu        sync.RWMutex
	doc       []byte
	fetchedAt time.Time
}

// metadataRetryGap is the least time between two fetches after a failure.
const metadataRetryGap = 5 * time.Second

func newMetadataCache(life context.Context, client *http.Client, u string, timeout, ttl time.Duration, log *slog.Logger) *metadataCache {
	m := &metadataCache{client: client, url: u, ttl: ttl, log: log}
	m.fetches = newRefresher(life, timeout, m.load)
	return m
}

func (m *metadataCache) load(ctx context.Context) error {
	body, err := fetchLimited(ctx, m.client, m.url, maxFetchBytes)
	if err == nil {
		var doc struct {
			Issuer string `json:"issuer"`
		}
		if err = json.Unmarshal(body, &doc); err == nil && doc.Issuer == "" {
			err = errors.New("metadata has no issuer")
		}
	}
	if err != nil {
		m.log.Warn("descope: cannot fetch authorization-server metadata", "err", err)
		return err
	}
	m.mu.Lock()
	m.doc, m.fetchedAt = body, time.Now()
	m.mu.Unlock()
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
