package descope

// routes.go serves the discovery routes beside the MCP endpoint: the
// protected-resource metadata (RFC 9728) and, for older clients, Descope's
// authorization-server metadata forwarded (see discovery.go).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

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
	prm := &resourceMetadataHandler{doc: resourceMetadata{
		Resource:               c.resource.URL,
		AuthorizationServers:   []string{c.issuer},
		ScopesSupported:        c.scopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           c.ResourceName,
		ResourceDocumentation:  c.ResourceDocumentation,
		DPoPAlgorithms:         c.DPoP.AlgorithmsSupported(),
		DPoPBoundRequired:      c.DPoP.Mode == auth.DPoPRequired,
	}}
	prm.publish(c.issuer, false)
	p.prm = prm
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

// resourceMetadataHandler serves the protected-resource metadata. Its
// authorization server is the configured issuer until Descope's discovery
// document has been fetched, then the issuer that document declares (see
// metadataCache.load), so that a client checking the metadata's issuer
// against the URL it built finds them equal. It never waits for Descope.
type resourceMetadataHandler struct {
	mu      sync.Mutex       // serializes publishing
	doc     resourceMetadata // fixed but for AuthorizationServers and added scopes; under mu
	current atomic.Pointer[prmBody]
}

type prmBody struct {
	issuer     string
	body       []byte
	discovered bool // the issuer comes from a fetched discovery document
}

// publish makes issuer the advertised authorization server.
func (h *resourceMetadataHandler) publish(issuer string, discovered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(issuer, discovered)
}

// advertiseScope adds scope to scopes_supported unless it is listed.
func (h *resourceMetadataHandler) advertiseScope(scope string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.Contains(h.doc.ScopesSupported, scope) {
		return
	}
	h.doc.ScopesSupported = append(slices.Clone(h.doc.ScopesSupported), scope)
	cur := h.current.Load()
	h.publishLocked(cur.issuer, cur.discovered)
}

func (h *resourceMetadataHandler) publishLocked(issuer string, discovered bool) {
	doc := h.doc
	doc.AuthorizationServers = []string{issuer}
	body, err := json.Marshal(doc)
	if err != nil {
		panic("descope: cannot encode resource metadata: " + err.Error()) // only strings: cannot happen
	}
	h.current.Store(&prmBody{issuer: issuer, body: body, discovered: discovered})
}

func (h *resourceMetadataHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if setDiscoveryHeaders(w, r) {
		return
	}
	cur := h.current.Load()
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	if cur.discovered {
		hd.Set("Cache-Control", "public, max-age=300")
	} else {
		// The authorization server may change once discovery is fetched.
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("Content-Length", strconv.Itoa(len(cur.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(cur.body)
	}
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

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
