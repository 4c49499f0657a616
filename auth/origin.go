package auth

// This file decides which browser origins may call the MCP endpoint. The
// MCP transport (2026-07-28) asks servers to refuse, with 403, a request
// whose Origin header is present and not allowed: it is how a page on
// another site is kept from driving a user's local or signed-in server.

import (
	"net/http"
	"net/url"
	"strings"
)

// WithAllowedOrigins sets the browser origins allowed to call the MCP
// endpoint, replacing the default (the origin of the provider's resource
// URL). A request whose Origin header is present and not listed gets 403
// before anything else; requests without Origin (every non-browser client)
// are unaffected. An entry is an origin such as "https://app.example.com";
// "http://localhost:*" allows any port of that scheme and host, which suits
// local tools such as MCP Inspector. The middleware gives allowed origins
// the CORS answers browsers need (see Middleware).
func WithAllowedOrigins(origins ...string) Option {
	return func(s *settings) { s.origins = append([]string{}, origins...) }
}

// originRule is one allowed origin: scheme and host, and a port or any.
type originRule struct {
	scheme, host, port string
	anyPort            bool
}

type origins []originRule

// parseOrigins reads the allowed origins; bad lists the entries that are
// not origins, which allow nothing.
func parseOrigins(list []string) (out origins, bad []string) {
	for _, o := range list {
		if r, ok := parseOrigin(o, true); ok {
			out = append(out, r)
		} else {
			bad = append(bad, o)
		}
	}
	return out, bad
}

// parseOrigin reads "scheme://host[:port]" (case-insensitive, default port
// dropped); wildcard allows ":*" as the port.
func parseOrigin(s string, wildcard bool) (originRule, bool) {
	scheme, rest, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return originRule{}, false
	}
	if wildcard {
		if h, ok := strings.CutSuffix(rest, ":*"); ok {
			return originRule{scheme: scheme, host: h, anyPort: true}, h != ""
		}
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || u.Hostname() == "" {
		return originRule{}, false
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return originRule{scheme: scheme, host: host, port: port}, true
}

// defaultOrigins allows the resource URL's own origin.
func defaultOrigins(resourceURL string) origins {
	u, err := url.Parse(resourceURL)
	if err != nil || u.Host == "" {
		return nil
	}
	out, _ := parseOrigins([]string{u.Scheme + "://" + u.Host})
	return out
}

// allows reports whether the Origin header value o is allowed.
func (list origins) allows(o string) bool {
	got, ok := parseOrigin(o, false)
	if !ok {
		return false // "null" and anything malformed
	}
	for _, r := range list {
		if r.scheme == got.scheme && r.host == got.host && (r.anyPort || r.port == got.port) {
			return true
		}
	}
	return false
}

// CORS for allowed origins. The lists are what MCP clients send and read:
// the credentials (Authorization, DPoP), the transport's headers, and the
// challenge and nonce of a refusal.
const (
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
	corsAllowHeaders  = "Authorization, Content-Type, Accept, DPoP, Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Protocol-Version, Mcp-Session-Id"
	corsExposeHeaders = "WWW-Authenticate, DPoP-Nonce, Mcp-Session-Id, Mcp-Protocol-Version"
	corsMaxAge        = "600"
)

// allowOrigin lets a page of origin, which is allowed, read the answer.
// Nothing is shared beyond what the page's own token already gets: no
// cookies are used, so no credentials are allowed.
func allowOrigin(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// preflight answers a CORS preflight of an allowed origin.
func preflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}
