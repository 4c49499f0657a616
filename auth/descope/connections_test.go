package descope_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// vault imitates Descope's outbound-app endpoints: which users connected
// which app, the token each gets, and what was asked.
type vault struct {
	t         *testing.T
	projectID string
	mu        sync.Mutex
	connected map[string]bool // user + "/" + app
	expiry    string          // the raw JSON of accessTokenExpiry
	status    int             // a forced status, 0 for none
	location  string          // a Location header with the forced status
	delay     time.Duration
	hits      atomic.Int64
	paths     []string
	bodies    []map[string]any
	auth      []string
}

func newVault(t *testing.T, projectID string) (*vault, *httptest.Server) {
	v := &vault{t: t, projectID: projectID, connected: map[string]bool{},
		expiry: fmt.Sprint(time.Now().Add(time.Hour).Unix())}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return v, srv
}

func (v *vault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.hits.Add(1)
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	_ = dec.Decode(&body)
	v.mu.Lock()
	v.paths = append(v.paths, r.URL.Path)
	v.bodies = append(v.bodies, body)
	v.auth = append(v.auth, r.Header.Get("Authorization"))
	status, delay, expiry := v.status, v.delay, v.expiry
	connected := v.connected[fmt.Sprint(body["userId"])+"/"+fmt.Sprint(body["appId"])]
	v.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		if v.location != "" {
			w.Header().Set("Location", v.location)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"errorCode":"E000000","errorDescription":"forced"}`)
		return
	}
	switch r.URL.Path {
	case "/v1/mgmt/outbound/app/connect":
		_, _ = io.WriteString(w, `{"url":"https://connect.example/`+fmt.Sprint(body["appId"])+`"}`)
	case "/v1/mgmt/outbound/app/user/token", "/v1/mgmt/outbound/app/user/token/latest",
		"/v1/mgmt/outbound/app/tenant/token", "/v1/mgmt/outbound/app/tenant/token/latest":
		if strings.Contains(r.URL.Path, "/tenant/") {
			connected = v.connected["tenant:"+fmt.Sprint(body["tenantId"])+"/"+fmt.Sprint(body["appId"])]
		}
		if !connected {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errorCode":"E111504","errorDescription":"Outbound app user token not found","errorMessage":"not found"}`)
			return
		}
		_, _ = io.WriteString(w, `{"token":{"id":"t1","appId":"`+fmt.Sprint(body["appId"])+`","userId":"`+fmt.Sprint(body["userId"])+
			`","accessToken":"third-party-secret","accessTokenType":"Bearer","accessTokenExpiry":`+expiry+`,"scopes":["calendar.read"]}}`)
	default:
		http.NotFound(w, r)
	}
}

// connEnv is a fake Descope for sign-in, the vault, and an endpoint whose
// handler asks Connections for the caller's token and answers what it got.
// The vault is the in-test one (v), or descopetest's own (newFakeVaultEnv,
// v nil).
type connEnv struct {
	ds    *descopetest.Server
	v     *vault
	srv   *httptest.Server
	conns *descope.Connections
	p     *descope.Provider
	logs  lockedBuffer
}

func newConnEnv(t *testing.T, req descope.ConnectionRequest, fetchTimeout time.Duration) *connEnv {
	t.Helper()
	e := &connEnv{ds: descopetest.NewServer()}
	t.Cleanup(e.ds.Close)
	var vaultSrv *httptest.Server
	e.v, vaultSrv = newVault(t, e.ds.ProjectID())
	e.start(t, req, fetchTimeout, descope.ConnectionsConfig{BaseURL: vaultSrv.URL, ConnectRedirectURL: "https://mcp.example.com/connected"})
	return e
}

// newFakeVaultEnv is a connEnv against descopetest's vault, at the
// provider's own Descope origin.
func newFakeVaultEnv(t *testing.T, req descope.ConnectionRequest, fetchTimeout time.Duration) *connEnv {
	t.Helper()
	e := &connEnv{ds: descopetest.NewServer()}
	t.Cleanup(e.ds.Close)
	e.start(t, req, fetchTimeout, descope.ConnectionsConfig{})
	return e
}

func (e *connEnv) start(t *testing.T, req descope.ConnectionRequest, fetchTimeout time.Duration, cfg descope.ConnectionsConfig) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := descope.New(descope.Config{WellKnownURL: e.ds.WellKnownURL(), ServerURL: "https://mcp.example.com",
		FetchTimeout: fetchTimeout, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	e.p = p
	e.conns, err = p.Connections(cfg)
	require.NoError(t, err)
	tool := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := e.conns.Token(r.Context(), req)
		if err != nil {
			var ce *descope.ConnectionError
			require.ErrorAs(t, err, &ce)
			_, _ = fmt.Fprintf(w, "error kind=%q connect=%q scope=%q code=%q text=%q", ce.Kind, ce.ConnectURL, ce.Scope, ce.Code, err.Error())
			return
		}
		_, _ = fmt.Fprintf(w, "token %s %s %d %v", tok.AccessToken, tok.Type, tok.Expiry.Unix(), tok.Scopes)
	})
	e.srv = httptest.NewServer(auth.Handler(p, tool, auth.WithLogger(log)))
	t.Cleanup(e.srv.Close)
}

func (e *connEnv) call(t *testing.T, token string) string {
	t.Helper()
	resp, body := postMCP(t, e.srv.URL, "Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	return body
}

func (e *connEnv) userToken(scope string) string {
	return e.ds.Mint(map[string]any{"aud": []string{resourceURL}, "scope": scope})
}

func TestConnectionToken(t *testing.T) {
	calendar := descope.ConnectionRequest{App: "google-calendar", Scopes: []string{"calendar.read", "calendar.read"}}
	e := newConnEnv(t, calendar, 0)
	user := e.ds.User().Subject
	tok := e.userToken("mcp:tools outbound.token.fetch")

	// Not connected yet: the typed error carries the link.
	got := e.call(t, tok)
	assert.Contains(t, got, `error kind="descope: the user has not connected this app" connect="https://connect.example/google-calendar"`)
	assert.Contains(t, got, `code="E111504"`)
	assert.Equal(t, int64(2), e.v.hits.Load(), "the token request, then the connect request")
	assert.Equal(t, []string{"/v1/mgmt/outbound/app/user/token", "/v1/mgmt/outbound/app/connect"}, e.v.paths)
	assert.Equal(t, map[string]any{"appId": "google-calendar", "options": map[string]any{"redirectUrl": "https://mcp.example.com/connected", "scopes": []any{"calendar.read"}}}, e.v.bodies[1])

	// Connected: the token, asked with the documented fields only and the
	// caller's own token; then served from the cache.
	e.v.mu.Lock()
	e.v.connected[user+"/google-calendar"] = true
	e.v.mu.Unlock()
	got = e.call(t, tok)
	assert.True(t, strings.HasPrefix(got, "token third-party-secret Bearer "), got)
	assert.True(t, strings.HasSuffix(got, " [calendar.read]"), got)
	assert.Equal(t, map[string]any{"appId": "google-calendar", "userId": user, "scopes": []any{"calendar.read"},
		"options": map[string]any{"withRefreshToken": false, "forceRefresh": false}}, e.v.bodies[2])
	assert.Equal(t, "Bearer "+e.ds.ProjectID()+":"+tok, e.v.auth[2])
	hits := e.v.hits.Load()
	assert.Equal(t, got, e.call(t, tok))
	assert.Equal(t, hits, e.v.hits.Load(), "the second call is served from the cache")

	// Without outbound.token.fetch nothing is sent.
	got = e.call(t, e.userToken("mcp:tools"))
	assert.Contains(t, got, `scope="outbound.token.fetch"`)
	assert.Contains(t, got, `kind="descope: the access token lacks the outbound.token.fetch scope"`)
	assert.Equal(t, hits, e.v.hits.Load())

	// Neither token ever reaches the logs.
	assert.NotContains(t, e.logs.String(), tok)
	assert.NotContains(t, e.logs.String(), "third-party-secret")
}

func TestConnectionTokenConcurrentMisses(t *testing.T) {
	e := newConnEnv(t, descope.ConnectionRequest{App: "slack", Tenant: "T1"}, 0)
	e.v.connected[e.ds.User().Subject+"/slack"] = true
	e.v.delay = 200 * time.Millisecond
	tok := e.userToken("outbound.token.fetch")
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.call(t, tok)
		}()
	}
	wg.Wait()
	for _, r := range results {
		assert.True(t, strings.HasPrefix(r, "token third-party-secret"), r)
	}
	assert.Equal(t, int64(1), e.v.hits.Load(), "eight concurrent misses, one fetch")
	assert.Equal(t, []string{"/v1/mgmt/outbound/app/user/token/latest"}, e.v.paths, "no scopes: the latest token")
	assert.Equal(t, "T1", e.v.bodies[0]["tenantId"])
	assert.NotContains(t, e.v.bodies[0], "scopes")
}

func TestConnectionTokenFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		delay  time.Duration
		kind   error
	}{
		{"Descope down", http.StatusServiceUnavailable, 0, descope.ErrConnectionUnavailable},
		{"rate limited", http.StatusTooManyRequests, 0, descope.ErrConnectionUnavailable},
		{"refused", http.StatusForbidden, 0, descope.ErrConnectionRefused},
		// The vault never answers: without the fetch timeout, the call would
		// hang and the test with it.
		{"slower than the fetch timeout", 0, 24 * time.Hour, descope.ErrConnectionUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConnEnv(t, descope.ConnectionRequest{App: "github", Scopes: []string{"repo"}}, 300*time.Millisecond)
			e.v.connected[e.ds.User().Subject+"/github"] = true
			e.v.status, e.v.delay = tt.status, tt.delay
			tok := e.userToken("outbound.token.fetch")
			got := e.call(t, tok)
			assert.Contains(t, got, fmt.Sprintf("kind=%q", tt.kind.Error()))
			assert.NotContains(t, got, tok)
			// A failure is not cached: the next call asks again.
			hits := e.v.hits.Load()
			e.call(t, tok)
			assert.Greater(t, e.v.hits.Load(), hits)
		})
	}
}

func TestConnectionTokenExpiryForms(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for name, raw := range map[string]string{
		"number":         fmt.Sprint(at.Unix()),
		"numeric string": `"` + fmt.Sprint(at.Unix()) + `"`,
		"RFC 3339":       `"` + at.Format(time.RFC3339) + `"`,
		"milliseconds":   fmt.Sprint(at.UnixMilli()),
	} {
		t.Run(name, func(t *testing.T) {
			e := newConnEnv(t, descope.ConnectionRequest{App: "drive"}, 0)
			e.v.connected[e.ds.User().Subject+"/drive"] = true
			e.v.expiry = raw
			assert.Equal(t, fmt.Sprintf("token third-party-secret Bearer %d [calendar.read]", at.Unix()), e.call(t, e.userToken("outbound.token.fetch")))
		})
	}
	t.Run("lifetime in seconds", func(t *testing.T) {
		e := newConnEnv(t, descope.ConnectionRequest{App: "drive"}, 0)
		e.v.connected[e.ds.User().Subject+"/drive"] = true
		e.v.expiry = `3600`
		before := time.Now().Add(time.Hour).Unix()
		var exp int64
		_, err := fmt.Sscanf(e.call(t, e.userToken("outbound.token.fetch")), "token third-party-secret Bearer %d", &exp)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, exp, before)
		assert.LessOrEqual(t, exp, time.Now().Add(time.Hour).Unix())
	})
	t.Run("garbage", func(t *testing.T) {
		e := newConnEnv(t, descope.ConnectionRequest{App: "drive"}, 0)
		e.v.connected[e.ds.User().Subject+"/drive"] = true
		e.v.expiry = `"next tuesday"`
		assert.Contains(t, e.call(t, e.userToken("outbound.token.fetch")), `kind="descope: connection tokens cannot be fetched right now"`)
	})
}

func TestConnectionTokenNeedsAMiddlewareCaller(t *testing.T) {
	e := newConnEnv(t, descope.ConnectionRequest{App: "x"}, 0)
	ctx := auth.WithClaims(context.Background(), &auth.Claims{Subject: "U1", Scopes: []string{descope.ScopeOutboundTokenFetch}})
	_, err := e.conns.Token(ctx, descope.ConnectionRequest{App: "x"})
	assert.True(t, errors.Is(err, descope.ErrConnectionRefused), "%v", err)
	assert.Equal(t, int64(0), e.v.hits.Load())
}

func TestConnectionTokenTenantWide(t *testing.T) {
	e := newConnEnv(t, descope.ConnectionRequest{App: "jira", Tenant: "T9", TenantWide: true, Scopes: []string{"read"}}, 0)
	e.v.connected["tenant:T9/jira"] = true
	got := e.call(t, e.userToken("outbound.token.fetch"))
	assert.True(t, strings.HasPrefix(got, "token third-party-secret"), got)
	assert.Equal(t, []string{"/v1/mgmt/outbound/app/tenant/token"}, e.v.paths)
	assert.Equal(t, map[string]any{"appId": "jira", "tenantId": "T9", "scopes": []any{"read"},
		"options": map[string]any{"withRefreshToken": false, "forceRefresh": false}}, e.v.bodies[0])
}

// TestConnectionRequestChecks: a request whose names could not be an app,
// a tenant or a scope is refused before anything is sent.
func TestConnectionRequestChecks(t *testing.T) {
	for name, req := range map[string]descope.ConnectionRequest{
		"no app":                 {},
		"app with a space":       {App: "git hub"},
		"app with a NUL":         {App: "a\x00latest"},
		"tenant with a space":    {App: "a", Tenant: "T 1"},
		"tenant-wide, no tenant": {App: "a", TenantWide: true},
		"empty scope":            {App: "a", Scopes: []string{"read", ""}},
		"scopes in one string":   {App: "a", Scopes: []string{"read write"}},
		"scope with a NUL":       {App: "a", Scopes: []string{"\x00latest\x00tenant-wide"}},
		"scope with a newline":   {App: "a", Scopes: []string{"read\n"}},
		"app not UTF-8":          {App: "a\xff"},
		"scope not UTF-8":        {App: "a", Scopes: []string{"read\xfe"}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newConnEnv(t, req, 0)
			assert.Contains(t, e.call(t, e.userToken("outbound.token.fetch")), `kind="descope: the connection token request was refused"`)
			assert.Zero(t, e.v.hits.Load(), "nothing sent")
		})
	}
}

// TestConnectionCacheKeys: requests that differ only in how they ask
// (latest or by scopes, the user's or the tenant's connection, one tenant
// or none) never share a cached token.
func TestConnectionCacheKeys(t *testing.T) {
	e := newConnEnv(t, descope.ConnectionRequest{}, 0)
	user := e.ds.User().Subject
	e.v.connected[user+"/a"] = true
	e.v.connected["tenant:T/a"] = true
	srv := httptest.NewServer(auth.Handler(e.p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, req := range []descope.ConnectionRequest{
			{App: "a", Tenant: "T", TenantWide: true},
			{App: "a", Tenant: "T"},
			{App: "a"},
			{App: "a", Scopes: []string{"x"}},
			{App: "a", Scopes: []string{"x", "y"}},
			{App: "a", Tenant: "T", TenantWide: true, Scopes: []string{"x"}},
		} {
			_, err := e.conns.Token(r.Context(), req)
			assert.NoError(t, err, "%+v", req)
		}
	})))
	t.Cleanup(srv.Close)
	postMCP(t, srv.URL, "Bearer "+e.userToken("outbound.token.fetch"))
	assert.EqualValues(t, 6, e.v.hits.Load(), "six requests, six fetches")
}

// TestConnectionForget: after Forget the caller's next call asks Descope
// again; another caller's entry stays.
func TestConnectionForget(t *testing.T) {
	req := descope.ConnectionRequest{App: "github", Scopes: []string{"read:user"}}
	e := newConnEnv(t, req, 0)
	e.v.connected[e.ds.User().Subject+"/github"] = true
	e.v.connected["U2bob/github"] = true
	alice := e.userToken("outbound.token.fetch")
	bob := e.ds.Mint(map[string]any{"aud": []string{resourceURL}, "sub": "U2bob", "scope": "outbound.token.fetch"})
	forget := httptest.NewServer(auth.Handler(e.p, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		e.conns.Forget(r.Context(), req)
	})))
	t.Cleanup(forget.Close)
	e.call(t, alice)
	e.call(t, bob)
	require.EqualValues(t, 2, e.v.hits.Load())
	postMCP(t, forget.URL, "Bearer "+alice)
	e.call(t, bob)
	assert.EqualValues(t, 2, e.v.hits.Load(), "bob's entry stays")
	e.call(t, alice)
	assert.EqualValues(t, 3, e.v.hits.Load(), "alice's was forgotten")
}

// TestConnectionNeverFollowsRedirects: a redirect from Descope's origin is
// not followed, so the caller's token goes nowhere else.
func TestConnectionNeverFollowsRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	e := newConnEnv(t, descope.ConnectionRequest{App: "github"}, 0)
	e.v.status, e.v.location = http.StatusTemporaryRedirect, other.URL+"/v1/mgmt/outbound/app/user/token/latest"
	assert.Contains(t, e.call(t, e.userToken("outbound.token.fetch")), `kind="descope: the connection token request was refused"`)
	assert.Zero(t, elsewhere.Load())
}

// TestConnectionTenantNotConnected: for a tenant's connection no connect
// link is asked for (Descope's would connect the user's own account).
func TestConnectionTenantNotConnected(t *testing.T) {
	for name, req := range map[string]descope.ConnectionRequest{
		"the user's, in a tenant": {App: "jira", Tenant: "T9"},
		"the tenant's own":        {App: "jira", Tenant: "T9", TenantWide: true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newConnEnv(t, req, 0)
			got := e.call(t, e.userToken("outbound.token.fetch"))
			assert.Contains(t, got, `error kind="descope: the user has not connected this app" connect=""`)
			assert.EqualValues(t, 1, e.v.hits.Load(), "no connect request")
		})
	}
}
