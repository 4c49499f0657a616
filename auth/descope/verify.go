package descope

// verify.go turns an access token into claims: the checks VerifyToken makes
// (size, signature, issuer, audience, times, token kind) and the typed
// Descope view of what it carries.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-go-contrib/descope/auth"
)

// Claims is the Descope view of a verified caller: the provider-neutral
// claims plus Descope's authorization claims.
type Claims struct {
	*auth.Claims

	// Roles and Permissions are granted project-wide.
	Roles       []string
	Permissions []string
	// Tenants maps each tenant the user belongs to onto the roles and
	// permissions held there.
	Tenants map[string]Tenant
	// CurrentTenant is the tenant selected for this session ("dct"), if any.
	CurrentTenant string
	// IssuerTenant is the tenant a tenant-scoped issuer names
	// ({base}/v1/apps/{project}/{tenant}): Descope mints such tokens for
	// cross-app access and enterprise-managed authorization. It is empty
	// for tokens of the agentic and project-level issuers.
	IssuerTenant string
}

// Tenant holds the roles and permissions a user has in one tenant.
type Tenant struct {
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// ClaimsFromContext returns the Descope claims of the caller of the current
// request, or false when the request was not authenticated by a Descope
// Provider.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := auth.ClaimsFromContext(ctx)
	if !ok {
		return nil, false
	}
	d, ok := c.Extra.(*Claims)
	return d, ok && d != nil
}

// Reasons a token is refused, as logged and as carried by auth.TokenError.
const (
	reasonTooLarge     = "too_large"
	reasonMalformed    = "malformed"
	reasonSignature    = "signature"
	reasonUnknownKey   = "unknown_key"
	reasonNoKeyID      = "no_key_id"
	reasonExpired      = "expired"
	reasonNotYetValid  = "not_yet_valid"
	reasonIssuedLater  = "issued_in_future"
	reasonAudience     = "audience"
	reasonIssuer       = "issuer"
	reasonMissingClaim = "missing_claim"
	reasonClaimType    = "claim_type"
	reasonRefreshToken = "refresh_token"
	reasonCritical     = "critical_header"
	reasonNoKeys       = "no_keys"
	reasonBinding      = "binding"
)

var (
	errNoKeyID    = errors.New("token has no key ID")
	errUnknownKey = errors.New("token signed with an unknown key")
	errNoKeys     = errors.New("no signing key has loaded yet")
)

// VerifyToken checks a Descope access token: its size, its syntax (three
// base64url segments and nothing else; the middleware leaves that check to
// this provider), its signature (against the project's published keys,
// with an allowed algorithm and a key ID), issuer, audience, expiry,
// not-before and issued-at times, and that it is not a refresh token. It returns the caller's claims; Extra holds the
// *Claims with Descope's roles, permissions and tenants.
//
// Errors are *auth.TokenError values of kind auth.ErrInvalidToken, or
// auth.ErrUnavailable when no signing key has ever loaded.
func (p *Provider) VerifyToken(ctx context.Context, token string) (*auth.Claims, error) {
	if len(token) > p.maxTokenBytes {
		return nil, auth.Invalid(reasonTooLarge, nil)
	}
	var key [32]byte
	if p.cache != nil {
		key = tokenKey(token)
		if c, ok := p.cache.get(&key, time.Now()); ok {
			return c, nil
		}
	}
	if !isCompactJWS(token) {
		return nil, auth.Invalid(reasonMalformed, nil)
	}
	if p.keys.current() == nil {
		p.keys.refresh(ctx)
		if p.keys.current() == nil {
			return nil, auth.Unavailable(reasonNoKeys, errNoKeys)
		}
	}
	raw := jwt.MapClaims{}
	tok, err := p.parser.ParseWithClaims(token, raw, p.keyFunc(ctx))
	if err != nil {
		return nil, classify(err)
	}
	if _, ok := tok.Header["crit"]; ok {
		// No extension is understood here, so RFC 7515 §4.1.11 says refuse.
		return nil, auth.Invalid(reasonCritical, nil)
	}
	claims, err := p.claimsOf(raw)
	if err != nil {
		return nil, err
	}
	if p.cache != nil {
		kid, _ := tok.Header["kid"].(string)
		p.cache.put(&key, claims, kid, time.Now())
	}
	return claims, nil
}

// isCompactJWS reports whether token is three non-empty base64url segments
// and nothing else. The base64 decoder under jwt/v5 skips CR and LF, so
// without this one token would have many accepted spellings (and cache
// entries). A cached token passed this check already, so it runs only on a
// cache miss.
func isCompactJWS(token string) bool {
	dots, run := 0, 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_':
			run++
		case c == '.' && run > 0:
			dots++
			run = 0
		default:
			return false
		}
	}
	return dots == 2 && run > 0
}

// keyFunc finds the key a token names. An unknown key ID triggers one
// coalesced refresh of the key set (at most one per MinKeyRefreshGap),
// which is how rotated keys are picked up between background refreshes.
func (p *Provider) keyFunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, errNoKeyID
		}
		key, err := p.keys.current().KeyfuncCtx(ctx)(t)
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			if !p.keys.refresh(ctx) {
				return nil, errUnknownKey
			}
			key, err = p.keys.current().KeyfuncCtx(ctx)(t)
			if errors.Is(err, jwkset.ErrKeyNotFound) {
				return nil, errUnknownKey
			}
		}
		return key, err
	}
}

// classify turns a jwt/v5 parse error into a refusal with a log reason.
func classify(err error) error {
	reason := reasonMalformed
	switch {
	case errors.Is(err, errNoKeyID):
		reason = reasonNoKeyID
	case errors.Is(err, errUnknownKey):
		reason = reasonUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = reasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = reasonNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = reasonIssuedLater
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = reasonAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = reasonMissingClaim
	case errors.Is(err, jwt.ErrInvalidType):
		reason = reasonClaimType
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = reasonSignature
	}
	return auth.Invalid(reason, err)
}

// claimsOf checks the claims jwt/v5 does not and builds the typed view.
func (p *Provider) claimsOf(raw jwt.MapClaims) (*auth.Claims, error) {
	iss, ok := raw["iss"].(string)
	if !ok {
		return nil, auth.Invalid(reasonIssuer, nil)
	}
	tenant, ok := p.issuers.match(iss)
	if !ok {
		return nil, auth.Invalid(reasonIssuer, nil)
	}
	if drn, _ := raw["drn"].(string); drn == "DSR" {
		return nil, auth.Invalid(reasonRefreshToken, nil)
	}
	sub, ok := raw["sub"].(string)
	if !ok || sub == "" {
		return nil, auth.Invalid(reasonMissingClaim, errors.New("no sub"))
	}
	aud, _ := raw.GetAudience()
	exp, _ := raw.GetExpirationTime()

	c := &auth.Claims{
		Subject:  sub,
		Audience: aud,
		Issuer:   iss,
		Raw:      raw,
	}
	if exp != nil {
		c.ExpiresAt = exp.Time
	}
	var err error
	if c.Scopes, err = scopesOf(raw); err != nil {
		return nil, err
	}
	for _, name := range []string{"azp", "client_id"} {
		if v, present := raw[name]; present {
			s, ok := v.(string)
			if !ok {
				return nil, auth.Invalid(reasonClaimType, fmt.Errorf("%s is not a string", name))
			}
			if s != "" {
				c.ClientID = s
				break
			}
		}
	}

	if c.KeyThumbprint, err = keyBinding(raw); err != nil {
		return nil, err
	}

	d := &Claims{Claims: c, IssuerTenant: tenant}
	if d.Roles, err = stringList(raw, "roles"); err != nil {
		return nil, err
	}
	if d.Permissions, err = stringList(raw, "permissions"); err != nil {
		return nil, err
	}
	if v, present := raw["dct"]; present {
		s, ok := v.(string)
		if !ok {
			return nil, auth.Invalid(reasonClaimType, errors.New("dct is not a string"))
		}
		d.CurrentTenant = s
	}
	if d.Tenants, err = tenantsOf(raw); err != nil {
		return nil, err
	}
	c.Extra = d
	return c, nil
}

// keyBinding returns the thumbprint of the key a token is bound to
// (cnf.jkt, RFC 9449 §6.1), or "" for a bearer token. A cnf this library
// cannot check (another confirmation method, such as an mTLS certificate
// hash) refuses the token rather than letting it pass as a bearer token.
func keyBinding(raw jwt.MapClaims) (string, error) {
	v, present := raw["cnf"]
	if !present {
		return "", nil
	}
	cnf, ok := v.(map[string]any)
	if !ok {
		return "", auth.Invalid(reasonClaimType, errors.New("cnf is not an object"))
	}
	jkt, ok := cnf["jkt"].(string)
	if !ok || len(cnf) != 1 {
		return "", auth.Invalid(reasonBinding, errors.New("cnf is not exactly a jkt"))
	}
	// A base64url SHA-256 hash: 43 characters, no padding.
	if len(jkt) != 43 || strings.IndexFunc(jkt, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return "", auth.Invalid(reasonBinding, errors.New("cnf.jkt is not a SHA-256 thumbprint"))
	}
	return jkt, nil
}

// scopesOf reads "scope" (space-separated), else "scp", else "scopes"; the
// last two may be a string or a list.
func scopesOf(raw jwt.MapClaims) ([]string, error) {
	for _, name := range []string{"scope", "scp", "scopes"} {
		v, present := raw[name]
		if !present {
			continue
		}
		if s, ok := v.(string); ok {
			return strings.Fields(s), nil
		}
		if name == "scope" {
			return nil, auth.Invalid(reasonClaimType, errors.New("scope is not a string"))
		}
		return stringList(raw, name)
	}
	return nil, nil
}

// stringList reads an optional claim that must be a list of strings.
func stringList(m map[string]any, name string) ([]string, error) {
	v, present := m[name]
	if !present || v == nil {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, auth.Invalid(reasonClaimType, fmt.Errorf("%s is not a list", name))
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, auth.Invalid(reasonClaimType, fmt.Errorf("%s holds a non-string", name))
		}
		out = append(out, s)
	}
	return out, nil
}

// tenantsOf reads Descope's {"tenants": {id: {"roles": [...], "permissions": [...]}}}.
func tenantsOf(raw jwt.MapClaims) (map[string]Tenant, error) {
	v, present := raw["tenants"]
	if !present || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, auth.Invalid(reasonClaimType, errors.New("tenants is not an object"))
	}
	out := make(map[string]Tenant, len(m))
	for id, tv := range m {
		tm, ok := tv.(map[string]any)
		if !ok {
			return nil, auth.Invalid(reasonClaimType, errors.New("a tenant is not an object"))
		}
		var t Tenant
		var err error
		if t.Roles, err = stringList(tm, "roles"); err != nil {
			return nil, err
		}
		if t.Permissions, err = stringList(tm, "permissions"); err != nil {
			return nil, err
		}
		out[id] = t
	}
	return out, nil
}
