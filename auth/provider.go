package auth

import (
	"context"
	"net/http"
)

// AuthProvider is what an identity provider implements to protect an MCP
// endpoint. Implementations must be safe for concurrent use.
type AuthProvider interface {
	// VerifyToken checks an access token and returns the caller's claims,
	// with KeyThumbprint set when the token is bound to a key (cnf.jkt);
	// the middleware checks the DPoP proof.
	// Errors should wrap ErrInvalidToken for a token that must not be
	// accepted, or ErrUnavailable when the provider cannot decide right now
	// (for instance, no signing key could be loaded yet). Any other error is
	// treated as an invalid token.
	VerifyToken(ctx context.Context, token string) (*Claims, error)

	// ProtectedResource describes the MCP endpoint this provider protects.
	// It must not change after the provider is built.
	ProtectedResource() ProtectedResource

	// Routes lists the discovery documents the provider serves beside the
	// MCP endpoint. They are served without authentication.
	Routes() []Route
}

// ProtectedResource describes a protected MCP endpoint to clients.
type ProtectedResource struct {
	// URL is the canonical resource URL, exactly what clients send as the
	// RFC 8707 resource parameter, e.g. "https://mcp.example.com/mcp".
	URL string

	// MetadataURL is where the RFC 9728 protected-resource metadata is
	// served; challenges point clients at it.
	MetadataURL string

	// RequiredScopes must all be granted for any request to the endpoint.
	RequiredScopes []string

	// DPoP says whether bearer tokens, DPoP-bound tokens or both are
	// accepted, and how proofs are checked.
	DPoP DPoP
}

// Route is one HTTP route a provider serves, such as a well-known discovery
// document. Path is an exact path, not a prefix.
type Route struct {
	Path    string
	Handler http.Handler
}
