package auth

import (
	"net/http"
	"net/url"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// WithProvider protects an mcp-go streamable-HTTP server with p:
//
//	srv := server.NewStreamableHTTPServer(mcpServer, auth.WithProvider(p))
//	srv.Start(":8080")
//
// Start then serves, on one listener, the MCP endpoint at the path of the
// provider's resource URL (guarded by Middleware) and the provider's
// discovery routes (unguarded). Pass it after other options: it sets the
// endpoint path and the http.Server, so a later WithEndpointPath or
// WithStreamableHTTPServer would undo it.
//
// It also binds MCP sessions to their callers (see SessionBinding and
// WithSessionSecret); a server.WithStateLess(true) or WithSessionIdManager
// passed after it replaces that binding.
//
// The option only governs Start. If you serve the StreamableHTTPServer as an
// http.Handler yourself, wrap it with Handler (or Middleware): used bare, it
// is not protected.
func WithProvider(p AuthProvider, opts ...Option) server.StreamableHTTPOption {
	return func(s *server.StreamableHTTPServer) {
		set := collect(opts)
		server.WithEndpointPath(EndpointPath(p))(s)
		SessionBinding(set.sessionSecret)(s)
		server.WithStreamableHTTPServer(newHTTPServer(handler(p, s, set)))(s)
	}
}

// Timeouts of the http.Server that WithProvider builds. None of them cuts
// a response stream: a body's read time is bounded by the middleware
// (WithBodyReadTimeout), and no write timeout is set, since SSE streams
// last as long as their token.
const (
	// DefaultReadHeaderTimeout bounds how long a client may take to send
	// its request headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection that carried no
	// request for this long.
	DefaultIdleTimeout = 60 * time.Second
)

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		// Four times the Authorization header the middleware accepts
		// (DefaultMaxHeaderBytes), instead of net/http's 1 MiB.
		MaxHeaderBytes: 4 * DefaultMaxHeaderBytes,
	}
}

// Handler returns an http.Handler that serves mcp, guarded by Middleware, at
// the path of the provider's resource URL, and the provider's discovery
// routes beside it. Mount it at the root of a server or mux. Other paths get
// 404.
func Handler(p AuthProvider, mcp http.Handler, opts ...Option) http.Handler {
	s := collect(opts)
	warnSessionSecret(s)
	return handler(p, mcp, s)
}

func handler(p AuthProvider, mcp http.Handler, s settings) http.Handler {
	mux := http.NewServeMux()
	endpoint := EndpointPath(p)
	mux.Handle(endpoint, middleware(p, s)(mcp))
	seen := map[string]bool{endpoint: true}
	for _, rt := range p.Routes() {
		// A discovery route can never take over the MCP endpoint or
		// another route.
		if rt.Handler == nil || seen[rt.Path] {
			continue
		}
		seen[rt.Path] = true
		mux.Handle(rt.Path, rt.Handler)
	}
	return mux
}

// EndpointPath is the path of the provider's resource URL, where the MCP
// endpoint is served ("/mcp" for "https://host/mcp").
func EndpointPath(p AuthProvider) string {
	u, err := url.Parse(p.ProtectedResource().URL)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}
