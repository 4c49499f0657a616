// Package caller carries the caller's access token from the middleware
// to the providers of this module, which may need to present it to their
// identity provider (Descope's Connections take the user's own token). It
// is internal so that no code outside this module, tool handlers included,
// can read the token: tools get claims, never the token itself.
package caller

import "context"

// TokenOf returns the access token the middleware accepted for the request
// ctx belongs to, or false when there is none (a context from
// auth.WithClaims, or not from a request). Package auth sets it.
var TokenOf = func(context.Context) (string, bool) { return "", false }
