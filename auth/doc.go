// Package auth puts OAuth access-token authentication (bearer and DPoP) in
// front of an MCP server built with github.com/mark3labs/mcp-go and served over streamable
// HTTP.
//
// The package is provider-neutral: an [AuthProvider] verifies tokens and
// describes the protected resource; package
// github.com/mcp-go-contrib/descope/auth/descope implements one for Descope.
//
// The shortest use:
//
//	p, err := descope.New(descope.ConfigFromEnv())
//	if err != nil { log.Fatal(err) }
//	defer p.Close()
//	srv := server.NewStreamableHTTPServer(mcpServer, auth.WithProvider(p))
//	log.Fatal(srv.Start(":8080"))
//
// Tools read the caller with [ClaimsFromContext]. For a custom mux, wrap the
// MCP handler with [Middleware] and mount the provider's [AuthProvider.Routes]
// beside it, or let [Handler] do both.
//
// Refusals follow RFC 6750 and the MCP authorization spec: 401 with a
// WWW-Authenticate challenge that names the protected-resource metadata
// (RFC 9728), 403 insufficient_scope, and 503 with Retry-After while the
// provider cannot verify any token. Bodies are JSON with fixed, generic
// descriptions.
//
// Tokens bound to a client's key (RFC 9449 DPoP, cnf.jkt) are accepted only
// with the DPoP scheme and a proof by that key, never as bearer tokens;
// [ProtectedResource].DPoP says whether bearer tokens, bound tokens or both
// are accepted (see [DPoP]). The proof checks are package
// github.com/mcp-go-contrib/descope/auth/dpop.
package auth
