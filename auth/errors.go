package auth

import (
	"errors"
	"strings"
)

// The kinds of refusal. Every error the middleware acts on is, through
// errors.Is, one of these; [TokenError] carries the detail.
var (
	// ErrNoToken: the request carried no bearer token (401, challenge
	// without an error code, as RFC 6750 §3.1 asks).
	ErrNoToken = errors.New("auth: no bearer token")
	// ErrInvalidToken: the token must not be accepted (401 invalid_token).
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrInsufficientScope: the token is valid but lacks a scope the
	// request needs (403 insufficient_scope).
	ErrInsufficientScope = errors.New("auth: insufficient scope")
	// ErrUnavailable: the provider cannot verify any token right now, for
	// example because no signing key has ever loaded (503 with
	// Retry-After). Clients keep their token and retry.
	ErrUnavailable = errors.New("auth: token verification unavailable")
)

// TokenError is a refused request or token. Kind is one of ErrNoToken,
// ErrInvalidToken, ErrInsufficientScope or ErrUnavailable; Reason is a short
// category for logs ("expired", "audience", ...); Err is the underlying
// cause. None of them is ever sent to the client.
type TokenError struct {
	Kind   error
	Reason string
	// Scopes are the scopes the request needs, for ErrInsufficientScope.
	Scopes []string
	Err    error
}

// Error describes the refusal for logs.
func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Reason != "" {
		b.WriteString(" (")
		b.WriteString(e.Reason)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is the kind of this refusal.
func (e *TokenError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Invalid returns a TokenError of kind ErrInvalidToken. Providers use it to
// refuse a token with a reason for the logs.
func Invalid(reason string, cause error) *TokenError {
	return &TokenError{Kind: ErrInvalidToken, Reason: reason, Err: cause}
}

// Unavailable returns a TokenError of kind ErrUnavailable.
func Unavailable(reason string, cause error) *TokenError {
	return &TokenError{Kind: ErrUnavailable, Reason: reason, Err: cause}
}

// reasonOf returns the log category of err.
func reasonOf(err error) string {
	var te *TokenError
	if errors.As(err, &te) && te.Reason != "" {
		return te.Reason
	}
	return "unspecified"
}
