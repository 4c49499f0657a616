package descope

// connections.go fetches the caller's third-party tokens from Descope's
// token vault (Connections, "outbound apps"), authenticated with the
// caller's own access token, so that Descope's access policies apply when
// it is asked (a cached token is served without asking) and no management
// key is needed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-go-contrib/descope/auth/internal/caller"
)

// ScopeOutboundTokenFetch is the scope a user's access token must carry for
// Descope to hand out the user's connection tokens. The MCP client asks for
// it and the user consents to it like any other scope; Provider.Connections
// lists it in the protected-resource metadata so that clients know to ask.
const ScopeOutboundTokenFetch = "outbound.token.fetch"

// The kinds of ConnectionError, matched with errors.Is.
var (
	// ErrNotConnected: the user has not connected the app (or not with
	// the scopes asked for). ConnectionError.ConnectURL, when set, is
	// where the user can connect it.
	ErrNotConnected = errors.New("descope: the user has not connected this app")
	// ErrConnectionScope: the caller's access token lacks
	// ScopeOutboundTokenFetch; nothing was sent to Descope. The client
	// should ask the user for that scope.
	ErrConnectionScope = errors.New("descope: the access token lacks the " + ScopeOutboundTokenFetch + " scope")
	// ErrConnectionUnavailable: Descope could not be reached or failed;
	// retry later.
	ErrConnectionUnavailable = errors.New("descope: connection tokens cannot be fetched right now")
	// ErrConnectionRefused: Descope refused the request (an unknown app, a
	// policy, an expired access token), or the context carries no caller.
	ErrConnectionRefused = errors.New("descope: the connection token request was refused")
)

// ConnectionError is a failed connection token request. Its text never
// holds a token.
type ConnectionError struct {
	Kind error  // one of the Err* kinds above
	App  string // the outbound app asked for
	// ConnectURL is where the user connects the app, for ErrNotConnected
	// when Descope gave one. None is asked for a Tenant's connection:
	// Descope's connect link makes the user's own.
	ConnectURL string
	// Tenant is the ConnectionRequest's Tenant, and TenantWide its
	// TenantWide.
	Tenant     string
	TenantWide bool
	// Scope is the scope the access token must carry, for
	// ErrConnectionScope.
	Scope string
	// Code is Descope's error code, when it sent one (E111504: not
	// connected).
	Code string
	Err  error // the underlying cause, if any
}

func (e *ConnectionError) Error() string {
	s := e.Kind.Error() + " (app " + strconv.Quote(e.App) + ")"
	if e.Code != "" {
		s += ": Descope error " + e.Code
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is the kind of this error.
func (e *ConnectionError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *ConnectionError) Unwrap() error { return e.Err }

// ConnectionRequest names the token a tool wants.
type ConnectionRequest struct {
	// App is the outbound app's ID, as the Descope console shows it.
	App string
	// Scopes are the third-party scopes the token must carry. Empty means
	// the user's latest token for the app, whatever its scopes.
	Scopes []string
	// Tenant, when set, asks for the user's connection within that
	// tenant.
	Tenant string
	// TenantWide asks for the connection made for the whole Tenant (by
	// its admin) instead of the user's own.
	TenantWide bool
}

// ConnectionToken is a third-party access token from Descope's vault.
type ConnectionToken struct {
	AccessToken string
	// Type is the token's type, as the third party uses it ("Bearer").
	Type string
	// Expiry is when the token stops working; zero when Descope did not
	// say.
	Expiry time.Time
	// Scopes are the scopes the token carries.
	Scopes []string
}

// ConnectionsConfig configures Connections. The zero value is the default.
type ConnectionsConfig struct {
	// CacheSize bounds the cached tokens (default 1000). A token is
	// cached per user, app, tenant and scopes until a minute before it
	// expires; a token without an expiry is not cached.
	CacheSize int
	// ConnectRedirectURL is where Descope sends the user after they
	// connected an app through ConnectionError.ConnectURL. Empty: Descope's
	// default.
	ConnectRedirectURL string
	// BaseURL is the Descope API origin to ask (default: the origin of the
	// provider's configured Descope URL). The caller's access token is sent
	// there, so it must be https (http only for localhost).
	BaseURL string
}

// noRedirects returns a copy of client that follows no redirect: a request
// carrying a caller's token goes to the configured origin only.
func noRedirects(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Connections fetches the current caller's connection tokens. Use one per
// Provider; it is safe for concurrent use.
type Connections struct {
	base      string
	projectID string
	client    *http.Client
	timeout   time.Duration
	redirect  string
	cache     *connectionCache
}

// Connections returns the Connections client of p's project, or an error
// naming the ConnectionsConfig field that is wrong. From then on the
// protected-resource metadata lists ScopeOutboundTokenFetch among the
// scopes supported, so that clients ask for it when users sign in.
func (p *Provider) Connections(cfg ConnectionsConfig) (*Connections, error) {
	jwks, err := url.Parse(p.keys.cfg.url)
	if err != nil {
		return nil, fmt.Errorf("descope: cannot derive the Descope origin: %w", err)
	}
	base := jwks.Scheme + "://" + jwks.Host
	if cfg.BaseURL != "" {
		u, err := checkDescopeURL("ConnectionsConfig.BaseURL", cfg.BaseURL)
		if err != nil {
			return nil, errors.New(strings.Replace(err.Error(), "Config.ConnectionsConfig.", "ConnectionsConfig.", 1))
		}
		if u.Path != "" && u.Path != "/" {
			return nil, errors.New("descope: ConnectionsConfig.BaseURL: must be an origin such as https://api.descope.com, without a path")
		}
		base = u.Scheme + "://" + u.Host
	}
	// The key set lives at {base}/{projectID}/.well-known/jwks.json.
	projectID, _, _ := strings.Cut(strings.TrimPrefix(jwks.Path, "/"), "/")
	if !validID(projectID) {
		return nil, errors.New("descope: cannot derive the project ID from the key set URL")
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = 1000
	}
	p.prm.advertiseScope(ScopeOutboundTokenFetch)
	return &Connections{
		base: base, projectID: projectID,
		client: noRedirects(p.keys.cfg.client), timeout: p.keys.cfg.timeout,
		redirect: cfg.ConnectRedirectURL,
		cache:    &connectionCache{max: size, entries: map[string]connectionEntry{}, flights: map[string]*flight{}},
	}, nil
}

// failure is a ConnectionError of kind for req.
func (req ConnectionRequest) failure(kind, cause error) *ConnectionError {
	return &ConnectionError{Kind: kind, App: req.App, Tenant: req.Tenant, TenantWide: req.TenantWide, Err: cause}
}

// Token returns the current caller's token for req.App. ctx must be the
// context of a request the middleware let in (a tool handler's ctx): the
// caller's own access token, which never leaves the library, authenticates
// the request to Descope, and must carry ScopeOutboundTokenFetch.
//
// Concurrent calls for the same token share one request to Descope, and
// the answer is cached until shortly before the token expires. Errors are
// *ConnectionError values.
func (c *Connections) Token(ctx context.Context, req ConnectionRequest) (*ConnectionToken, error) {
	who, err := c.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	return c.cache.get(ctx, who.key, req.failure, func() (*ConnectionToken, error) {
		// The fetch outlives a caller that gives up: others may wait on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		return c.fetch(fctx, who.token, who.claims.Subject, req, who.scopes)
	})
}

// Forget drops the current caller's cached token for req, so that the
// next Token call asks Descope again: for instance after the third-party
// API refused the token (revoked, or disconnected in Descope), since a
// cached token is served without asking Descope until shortly before it
// expires.
func (c *Connections) Forget(ctx context.Context, req ConnectionRequest) {
	if who, err := c.caller(ctx, req); err == nil {
		c.cache.forget(who.key)
	}
}

// connectionCaller is who asks for a connection token, and for what.
type connectionCaller struct {
	claims *Claims
	token  string   // their access token
	scopes []string // req's scopes, sorted, without repeats
	key    string   // the cache key
}

// caller checks req and the caller of ctx.
func (c *Connections) caller(ctx context.Context, req ConnectionRequest) (connectionCaller, error) {
	fail := req.failure
	switch {
	case !plainName(req.App):
		return connectionCaller{}, fail(ErrConnectionRefused, errors.New("ConnectionRequest.App is empty or holds spaces or control characters"))
	case req.Tenant != "" && !plainName(req.Tenant):
		return connectionCaller{}, fail(ErrConnectionRefused, errors.New("ConnectionRequest.Tenant holds spaces or control characters"))
	case req.TenantWide && req.Tenant == "":
		return connectionCaller{}, fail(ErrConnectionRefused, errors.New("ConnectionRequest.TenantWide needs Tenant"))
	case slices.ContainsFunc(req.Scopes, func(s string) bool { return !plainName(s) }):
		return connectionCaller{}, fail(ErrConnectionRefused, errors.New("ConnectionRequest.Scopes holds an empty scope, or one with spaces or control characters"))
	}
	claims, ok := ClaimsFromContext(ctx)
	token, hasToken := caller.TokenOf(ctx)
	if !ok || !hasToken {
		return connectionCaller{}, fail(ErrConnectionRefused, errors.New("the context carries no caller accepted by the middleware"))
	}
	if !claims.HasScope(ScopeOutboundTokenFetch) {
		e := fail(ErrConnectionScope, nil)
		e.Scope = ScopeOutboundTokenFetch
		return connectionCaller{}, e
	}
	scopes := slices.Clone(req.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	// JSON keeps the fields apart whatever they hold.
	key, _ := json.Marshal(struct {
		Issuer, Subject, App, Tenant string
		Scopes                       []string
		Latest, TenantWide           bool
	}{claims.Issuer, claims.Subject, req.App, req.Tenant, scopes, len(scopes) == 0, req.TenantWide})
	return connectionCaller{claims: claims, token: token, scopes: scopes, key: string(key)}, nil
}

// plainName reports whether s is a non-empty name of valid UTF-8 without
// spaces or control characters, as app IDs, tenant IDs and OAuth scopes
// are. (Invalid UTF-8 would also blur the cache key: JSON writes every
// invalid byte as U+FFFD.)
func plainName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) })
}

// tokenRequest is the body of the token endpoints: only documented fields.
type tokenRequest struct {
	AppID    string       `json:"appId"`
	UserID   string       `json:"userId,omitempty"`
	Scopes   []string     `json:"scopes,omitempty"`
	TenantID string       `json:"tenantId,omitempty"`
	Options  tokenOptions `json:"options"`
}

type tokenOptions struct {
	WithRefreshToken bool `json:"withRefreshToken"`
	ForceRefresh     bool `json:"forceRefresh"`
}

type tokenAnswer struct {
	Token *struct {
		AccessToken       string          `json:"accessToken"`
		AccessTokenType   string          `json:"accessTokenType"`
		AccessTokenExpiry json.RawMessage `json:"accessTokenExpiry"`
		Scopes            []string        `json:"scopes"`
	} `json:"token"`
}

type descopeError struct {
	Code string `json:"errorCode"`
}

const (
	pathUserToken       = "/v1/mgmt/outbound/app/user/token"
	pathUserTokenLatest = "/v1/mgmt/outbound/app/user/token/latest"
	pathTenantToken     = "/v1/mgmt/outbound/app/tenant/token"
	pathTenantLatest    = "/v1/mgmt/outbound/app/tenant/token/latest"
	pathConnect         = "/v1/mgmt/outbound/app/connect"
	codeNotConnected    = "E111504"
)

func (c *Connections) fetch(ctx context.Context, token, userID string, req ConnectionRequest, scopes []string) (*ConnectionToken, error) {
	body := tokenRequest{AppID: req.App, UserID: userID, TenantID: req.Tenant}
	path := pathUserTokenLatest
	if len(scopes) > 0 {
		body.Scopes, path = scopes, pathUserToken
	}
	if req.TenantWide {
		body.UserID, path = "", pathTenantLatest
		if len(scopes) > 0 {
			path = pathTenantToken
		}
	}
	status, answer, err := c.post(ctx, token, path, body)
	if err != nil {
		return nil, req.failure(ErrConnectionUnavailable, err)
	}
	if status != http.StatusOK {
		return nil, c.refusal(ctx, token, req, scopes, status, answer)
	}
	var a tokenAnswer
	if json.Unmarshal(answer, &a) != nil || a.Token == nil || a.Token.AccessToken == "" {
		return nil, req.failure(ErrConnectionUnavailable, errors.New("the answer holds no token"))
	}
	expiry, err := parseExpiry(a.Token.AccessTokenExpiry, time.Now())
	if err != nil {
		return nil, req.failure(ErrConnectionUnavailable, err)
	}
	return &ConnectionToken{AccessToken: a.Token.AccessToken, Type: a.Token.AccessTokenType, Expiry: expiry, Scopes: a.Token.Scopes}, nil
}

// refusal classifies a non-200 answer; for "not connected" it asks for the
// link where the user connects the app (none for a tenant's connection:
// the connect endpoint takes no tenant, and its link would make the user's
// own).
func (c *Connections) refusal(ctx context.Context, token string, req ConnectionRequest, scopes []string, status int, answer []byte) error {
	var de descopeError
	_ = json.Unmarshal(answer, &de)
	e := req.failure(ErrConnectionRefused, fmt.Errorf("status %d", status))
	e.Code = de.Code
	switch {
	case de.Code == codeNotConnected:
		e.Kind, e.Err = ErrNotConnected, nil
		if req.Tenant == "" {
			e.ConnectURL = c.connectURL(ctx, token, req.App, scopes)
		}
	case status >= 500 || status == http.StatusTooManyRequests:
		e.Kind = ErrConnectionUnavailable
	}
	return e
}

type connectRequest struct {
	AppID   string         `json:"appId"`
	Options connectOptions `json:"options"`
}

type connectOptions struct {
	RedirectURL string   `json:"redirectUrl,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
}

// connectURL asks Descope where the user connects the app; "" when it
// cannot say.
func (c *Connections) connectURL(ctx context.Context, token, app string, scopes []string) string {
	status, answer, err := c.post(ctx, token, pathConnect, connectRequest{AppID: app,
		Options: connectOptions{RedirectURL: c.redirect, Scopes: scopes}})
	if err != nil || status != http.StatusOK {
		return ""
	}
	var a struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return ""
	}
	// https, or http only from a Descope on this machine (tests, dev mode).
	if u, err := url.Parse(a.URL); err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !strings.HasPrefix(c.base, "http://"))) {
		return ""
	}
	return a.URL
}

// post sends body to path with the caller's token, as Descope's SDKs do
// for user-authenticated management calls: "Bearer <project>:<token>".
func (c *Connections) post(ctx context.Context, token, path string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.projectID+":"+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		// url.Error names the URL, never the header: safe to keep.
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return 0, nil, err
	}
	if len(answer) > maxFetchBytes {
		return 0, nil, errTooLarge
	}
	return resp.StatusCode, answer, nil
}

// parseExpiry reads accessTokenExpiry, which Descope's sources give as a
// number or a numeric string of Unix seconds (or milliseconds), or as RFC
// 3339 text; a number below 10^9 (before 2001) is a lifetime in seconds
// from now, as one SDK's tests write it. Absent or null is no expiry.
func parseExpiry(raw json.RawMessage, now time.Time) (time.Time, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	if unquoted, err := strconv.Unquote(s); err == nil {
		s = unquoted
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || f < 0 || f > 1e15:
		return time.Time{}, errors.New("accessTokenExpiry is neither a Unix time nor RFC 3339")
	case f > 1e11: // past year 5138 in seconds: milliseconds
		return time.UnixMilli(int64(f)), nil
	case f < 1e9:
		return now.Add(time.Duration(f) * time.Second), nil
	}
	return time.Unix(int64(f), 0), nil
}

// connectionCache holds fetched tokens and the fetches in flight.
type connectionCache struct {
	max     int
	now     func() time.Time // nil: time.Now
	mu      sync.Mutex
	entries map[string]connectionEntry
	flights map[string]*flight
}

type connectionEntry struct {
	tok   *ConnectionToken
	until time.Time
}

type flight struct {
	done chan struct{}
	tok  *ConnectionToken
	err  error
}

// cacheMargin is how long before its expiry a token stops being served
// from the cache.
const cacheMargin = time.Minute

func (c *connectionCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// forget drops key's entry.
func (c *connectionCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// get returns the cached token of key, or joins or starts its fetch. A
// caller that joins stops waiting when its ctx ends.
func (c *connectionCache) get(ctx context.Context, key string, fail func(kind, cause error) *ConnectionError,
	fetch func() (*ConnectionToken, error)) (*ConnectionToken, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		if c.clock().Before(e.until) {
			c.mu.Unlock()
			return copyToken(e.tok), nil
		}
		delete(c.entries, key)
	}
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fail(ErrConnectionUnavailable, ctx.Err())
		}
		if f.err != nil {
			return nil, f.err
		}
		return copyToken(f.tok), nil
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	// Deferred, so that a fetch that panics does not leave the flight
	// open for every later caller.
	defer func() {
		c.mu.Lock()
		delete(c.flights, key)
		if f.err == nil && f.tok != nil && !f.tok.Expiry.IsZero() {
			if until := f.tok.Expiry.Add(-cacheMargin); c.clock().Before(until) {
				c.makeRoom()
				c.entries[key] = connectionEntry{tok: f.tok, until: until}
			}
		}
		c.mu.Unlock()
		if f.tok == nil && f.err == nil {
			f.err = fail(ErrConnectionUnavailable, errors.New("the fetch failed"))
		}
		close(f.done)
	}()
	f.tok, f.err = fetch()
	if f.err != nil {
		return nil, f.err
	}
	return copyToken(f.tok), nil
}

// makeRoom drops expired entries and, if still full, one more. c.mu is held.
func (c *connectionCache) makeRoom() {
	if len(c.entries) < c.max {
		return
	}
	now := c.clock()
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max {
			break
		}
		delete(c.entries, k)
	}
}

func copyToken(t *ConnectionToken) *ConnectionToken {
	out := *t
	out.Scopes = slices.Clone(t.Scopes)
	return &out
}
