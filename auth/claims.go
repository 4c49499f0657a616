package auth

import (
	"context"
	"slices"
	"time"

	"github.com/mcp-go-contrib/descope/auth/internal/caller"
)

// Claims describe the verified caller of a request.
type Claims struct {
	// Subject is the user the token was issued for ("sub").
	Subject string
	// ClientID is the OAuth client that obtained the token.
	ClientID string
	// Scopes are the scopes granted to the token.
	Scopes []string
	// Audience lists the token's "aud" values.
	Audience []string
	// Issuer is the token's "iss".
	Issuer string
	// ExpiresAt is when the token stops being valid.
	ExpiresAt time.Time
	// KeyThumbprint is the RFC 7638 thumbprint of the key the token is
	// bound to (its cnf.jkt, RFC 9449), or empty for a bearer token. The
	// middleware accepts a bound token only with a DPoP proof by that key.
	KeyThumbprint string
	// Raw holds every claim of the token as decoded from JSON. Treat it as
	// read-only: the same map may be shared by concurrent requests.
	Raw map[string]any
	// Extra carries a provider's own typed view of the claims; the Descope
	// provider stores a *descope.Claims here. Read it through the
	// provider's accessor rather than directly.
	Extra any
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool {
	return c != nil && slices.Contains(c.Scopes, scope)
}

// requestKey is the context key for *requestInfo; unexported so only this
// package can set it.
type requestKey struct{}

// requestInfo is what the middleware learned about a request: one context
// value (one allocation) for all of it.
type requestInfo struct {
	claims *Claims
	// op is the tools/call being made, when a Policy is in use.
	op operation
	// checkedSession is the session ID the middleware checked, so that
	// mcp-go's Validate does not pay for the MAC twice.
	checkedSession string
	// sessions is the session manager mcp-go asks for, kept here so that
	// it costs no allocation of its own.
	sessions boundSessions
	// token is the access token the middleware accepted. It is read only
	// through package caller, by this module's providers; never by
	// tools.
	token string
}

// postInfo is the requestInfo of a POST, with room for its message and
// the body handed on (readMessage): one allocation for all three, and none
// of that room on other requests.
type postInfo struct {
	requestInfo
	read readBuffers
}

func init() {
	caller.TokenOf = func(ctx context.Context) (string, bool) {
		info := requestInfoFrom(ctx)
		if info == nil || info.token == "" {
			return "", false
		}
		return info.token, true
	}
}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	return info
}

// WithClaims returns a copy of ctx that carries c. The middleware calls it
// for every authenticated request; tests of tool handlers can call it to
// fake a caller.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return withRequestInfo(ctx, &requestInfo{claims: c})
}

// ClaimsFromContext returns the verified caller of the current request, or
// false when the request was not authenticated.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	info := requestInfoFrom(ctx)
	if info == nil || info.claims == nil {
		return nil, false
	}
	return info.claims, true
}
