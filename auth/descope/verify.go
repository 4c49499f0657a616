package descope

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
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

// VerifyToken checks a Descope access token: its size, signature (against
// the project's published keys, with an allowed algorithm and a key ID),
// issuer, audience, expiry, not-before and issued-at times, and that it is
// not a refresh token. It returns the caller's claims; Extra holds the
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
	if !ok || !p.acceptsIssuer(iss) {
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

	d := &Claims{Claims: c}
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

func (p *Provider) acceptsIssuer(iss string) bool {
	for _, s := range p.issuers {
		if iss == s {
			return true
		}
	}
	return false
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

// KeyStatus reports on the provider's signing keys, for health and
// readiness checks.
type KeyStatus struct {
	// Loaded is true once a key set has loaded; until then the MCP
	// endpoint answers 503.
	Loaded bool
	// Keys is the number of usable keys in the current set.
	Keys int
	// LastRefresh is when keys last loaded successfully (zero if never).
	LastRefresh time.Time
	// Failing is true when the latest refresh failed; the keys loaded
	// before stay in use.
	Failing bool
}

// KeyStatus reports whether signing keys are loaded and when they last
// refreshed. A readiness probe can require Loaded.
func (p *Provider) KeyStatus() KeyStatus {
	st := KeyStatus{Failing: p.keys.failing.Load(), Keys: int(p.keys.count.Load())}
	if at := p.keys.loaded.Load(); at != 0 {
		st.Loaded = true
		st.LastRefresh = time.Unix(0, at)
	}
	return st
}

// keySet holds the project's signing keys. It loads them in the background
// (retrying with backoff until the first success, then every refreshEvery)
// and on demand for unknown key IDs. A failed refresh keeps the keys it had.
type keySet struct {
	cfg     keySetConfig
	life    context.Context
	keys    atomic.Pointer[keyfunc.Keyfunc]
	fetches *refresher
	stopped chan struct{}
	loaded  atomic.Int64 // unix nanoseconds of the last successful load
	count   atomic.Int64 // keys in the current set
	failing atomic.Bool  // the last refresh failed
}

type keySetConfig struct {
	url          string
	client       *http.Client
	timeout      time.Duration
	refreshEvery time.Duration
	minGap       time.Duration
	log          *slog.Logger
	onLoad       func(kids map[string]bool) // called after each successful load
}

// Backoff bounds while no key has ever loaded.
const (
	firstRetry = 500 * time.Millisecond
	maxRetry   = 30 * time.Second
)

func newKeySet(life context.Context, cfg keySetConfig) *keySet {
	k := &keySet{cfg: cfg, life: life, stopped: make(chan struct{})}
	k.fetches = newRefresher(life, cfg.timeout, k.load)
	return k
}

// current returns the loaded keys, or nil before the first load.
func (k *keySet) current() keyfunc.Keyfunc {
	if p := k.keys.Load(); p != nil {
		return *p
	}
	return nil
}

// refresh fetches the keys again on behalf of a request (none loaded yet,
// or a token with an unknown key ID), unless a fetch started less than
// minGap ago; it joins a fetch in flight and waits at most until ctx ends.
// It reports whether a fetch ended while it waited.
func (k *keySet) refresh(ctx context.Context) bool {
	return k.fetches.wait(ctx, k.cfg.minGap)
}

func (k *keySet) startBackground() {
	go func() {
		defer close(k.stopped)
		retry := firstRetry
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-k.life.Done():
				return
			case <-timer.C:
			}
			if done := k.fetches.start(0); done != nil {
				select {
				case <-done:
				case <-k.life.Done():
					return
				}
			}
			next := k.cfg.refreshEvery
			if k.current() == nil {
				next = retry + rand.N(retry/2+1)
				retry = min(2*retry, maxRetry)
			} else if k.failing.Load() {
				next = min(k.cfg.refreshEvery, maxRetry)
			} else {
				retry = firstRetry
			}
			timer.Reset(next)
		}
	}()
}

func (k *keySet) waitStopped() { <-k.stopped }

// load fetches and installs the key set.
func (k *keySet) load(ctx context.Context) error {
	body, err := fetchLimited(ctx, k.cfg.client, k.cfg.url, maxFetchBytes)
	if err == nil {
		var kf keyfunc.Keyfunc
		var kids map[string]bool
		if kf, kids, err = parseKeySet(body); err == nil {
			first := k.current() == nil
			k.keys.Store(&kf)
			k.loaded.Store(time.Now().UnixNano())
			k.count.Store(int64(len(kids)))
			if k.cfg.onLoad != nil {
				k.cfg.onLoad(kids)
			}
			if k.failing.Swap(false) || first {
				k.cfg.log.Info("descope: signing keys loaded", "keys", len(kids))
			}
			return nil
		}
	}
	if ctx.Err() != nil && k.life.Err() != nil {
		return err // shutting down
	}
	k.failing.Store(true)
	if k.current() == nil {
		k.cfg.log.Error("descope: cannot load signing keys; the MCP endpoint answers 503 until they load", "err", err)
	} else {
		k.cfg.log.Warn("descope: key refresh failed; keeping the keys loaded before", "err", err)
	}
	return err
}

// parseKeySet keeps the usable signing keys of a JWK set: public keys with
// a key ID, meant for signatures, of a type an allowed algorithm can use
// (RSA of at least 2048 bits, EC, OKP). A set with none is an error, so a
// bad answer never wipes out good keys.
func parseKeySet(body []byte) (keyfunc.Keyfunc, map[string]bool, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("key set is not valid JSON: %w", err)
	}
	store := jwkset.NewMemoryStorage()
	ctx := context.Background()
	kids := make(map[string]bool)
	for _, m := range set.Keys {
		if m.KID == "" || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		if m.KTY != jwkset.KtyRSA && m.KTY != jwkset.KtyEC && m.KTY != jwkset.KtyOKP {
			continue
		}
		// Only public parts are read, even if a private key was published.
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		if pub, ok := jwk.Key().(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
			continue
		}
		if kids[m.KID] {
			continue // a duplicate key ID is ambiguous; the first one wins
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			continue
		}
		kids[m.KID] = true
	}
	if len(kids) == 0 {
		return nil, nil, errors.New("key set has no usable signing key")
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store})
	return kf, kids, err
}
