package descope_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
	"github.com/mcp-go-contrib/descope/auth/internal/caller"
)

const (
	resourceURL = "https://mcp.example.com/mcp"
	metadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

	challengeNoToken = `Bearer scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	challengeInvalid = `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not issued for this server.", scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	challengeScope   = `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	bodyNoToken      = `{"error":"unauthorized","error_description":"This endpoint requires an OAuth access token in the Authorization header."}`
	bodyInvalid      = `{"error":"invalid_token","error_description":"The access token is invalid, expired, or not issued for this server."}`
	bodyScope        = `{"error":"insufficient_scope","error_description":"The access token does not grant the scope this request requires."}`
	bodyUnavailable  = `{"error":"temporarily_unavailable","error_description":"Access tokens cannot be verified right now. Retry later with the same token."}`
)

// fixture is a fake Descope, a provider configured against it, and an
// httptest server with the provider in front of a handler that echoes the
// caller.
type fixture struct {
	ds  *descopetest.Server
	p   *descope.Provider
	srv *httptest.Server
}

func newFixture(t *testing.T, cfg descope.Config, opts ...descopetest.Option) *fixture {
	t.Helper()
	ds := descopetest.NewServer(opts...)
	t.Cleanup(ds.Close)
	if cfg.WellKnownURL == "" && cfg.ProjectID == "" {
		cfg.WellKnownURL = ds.WellKnownURL()
	}
	if cfg.ServerURL == "" {
		cfg.ServerURL = "https://mcp.example.com"
	}
	p, err := descope.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := descope.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, c.Subject+" "+strings.Join(c.Roles, ","))
	})
	srv := httptest.NewServer(auth.Handler(p, echo))
	t.Cleanup(srv.Close)
	return &fixture{ds: ds, p: p, srv: srv}
}

func (f *fixture) post(t *testing.T, authorization string) (*http.Response, string) {
	t.Helper()
	return postMCP(t, f.srv.URL, authorization)
}

// postMCP sends a POST of {} to base's /mcp with the Authorization header
// authorization ("" for none), and returns the answer and its body.
func postMCP(t *testing.T, base, authorization string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{}`))
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// signUnsigned builds header.payload. with no signature ("alg": "none").
func signNone(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "."
}

func TestVerifyTokenOverHTTP(t *testing.T) {
	f := newFixture(t, descope.Config{RequiredScopes: []string{"mcp:tools"}},
		descopetest.WithUser(descopetest.User{Subject: "U2alice", Roles: []string{"editor", "viewer"}}))
	ds := f.ds
	now := time.Now()
	valid := func(extra map[string]any) map[string]any {
		c := map[string]any{"aud": []string{resourceURL}, "scope": "mcp:tools notes:read"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	hsWithPublicKey := func() string {
		der, err := x509.MarshalPKIXPublicKey(ds.PublicKey(ds.SigningKeyID()))
		require.NoError(t, err)
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(valid(map[string]any{
			"iss": ds.Issuer(), "sub": "U2mallory", "exp": now.Add(time.Hour).Unix(),
		})))
		tok.Header["kid"] = ds.SigningKeyID()
		s, err := tok.SignedString(pemKey)
		require.NoError(t, err)
		return s
	}

	tests := []struct {
		name      string
		header    string // full Authorization header; empty means none
		status    int
		challenge string
		body      string
		reason    string // expected TokenError reason from VerifyToken
	}{
		{name: "valid token", header: "Bearer " + ds.Mint(valid(nil)), status: 200, body: "U2alice editor,viewer"},
		{name: "audience is the project ID", header: "Bearer " + ds.Mint(valid(map[string]any{"aud": ds.ProjectID()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "audience"},
		{name: "audience is the project ID and another app", header: "Bearer " + ds.Mint(valid(map[string]any{"aud": []string{ds.ProjectID(), "https://other.example/mcp"}})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "audience"},
		{name: "audience as array with others", header: "Bearer " + ds.Mint(valid(map[string]any{"aud": []string{"https://other.example/mcp", resourceURL}})), status: 200, body: "U2alice editor,viewer"},
		{name: "project-level issuer", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": ds.ProjectIssuer()})), status: 200, body: "U2alice editor,viewer"},
		{name: "expired within leeway", header: "Bearer " + ds.Mint(valid(map[string]any{"exp": now.Add(-2 * time.Second).Unix()})), status: 200, body: "U2alice editor,viewer"},
		{name: "missing header", status: 401, challenge: challengeNoToken, body: bodyNoToken},
		{name: "wrong scheme", header: "Basic " + ds.Mint(valid(nil)), status: 401, challenge: challengeNoToken, body: bodyNoToken},
		{name: "garbage", header: "Bearer abc.def.ghi", status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "malformed"},
		{name: "not a JWT", header: "Bearer notatoken", status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "malformed"},
		{name: "expired", header: "Bearer " + ds.Mint(valid(map[string]any{"exp": now.Add(-time.Minute).Unix()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "expired"},
		{name: "not yet valid", header: "Bearer " + ds.Mint(valid(map[string]any{"nbf": now.Add(time.Hour).Unix()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "not_yet_valid"},
		{name: "issued in the future", header: "Bearer " + ds.Mint(valid(map[string]any{"iat": now.Add(time.Hour).Unix()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issued_in_future"},
		{name: "wrong issuer", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": "https://evil.example/v1/apps/" + ds.ProjectID()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issuer"},
		{name: "another project's issuer", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": ds.URL() + "/v1/apps/P2otherProject0000000000000"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issuer"},
		{name: "another MCP server's issuer", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": ds.URL() + "/v1/apps/agentic/" + ds.ProjectID() + "/MSother"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issuer"},
		{name: "issuer with trailing slash", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": ds.Issuer() + "/"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issuer"},
		{name: "session-token issuer", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": ds.ProjectID()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issuer"},
		{name: "missing issuer", header: "Bearer " + ds.Mint(valid(map[string]any{"iss": nil})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "issuer"},
		{name: "wrong audience", header: "Bearer " + ds.Mint(valid(map[string]any{"aud": "https://other.example/mcp"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "audience"},
		{name: "audience with trailing slash", header: "Bearer " + ds.Mint(valid(map[string]any{"aud": resourceURL + "/"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "audience"},
		{name: "missing audience", header: "Bearer " + ds.Mint(valid(map[string]any{"aud": nil})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "missing_claim"},
		{name: "missing exp", header: "Bearer " + ds.Mint(valid(map[string]any{"exp": nil})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "missing_claim"},
		{name: "missing sub", header: "Bearer " + ds.Mint(valid(map[string]any{"sub": nil})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "missing_claim"},
		{name: "alg none", header: "Bearer " + signNone(t, map[string]any{"alg": "none", "typ": "JWT", "kid": ds.SigningKeyID()}, valid(map[string]any{"iss": ds.Issuer(), "sub": "U2mallory", "exp": now.Add(time.Hour).Unix()})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "malformed"},
		{name: "HS256 signed with the public key", header: "Bearer " + hsWithPublicKey(), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "signature"},
		{name: "bad signature", header: "Bearer " + ds.Mint(valid(nil))[:len(ds.Mint(valid(nil)))-4] + "AAAA", status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "signature"},
		{name: "unknown kid", header: "Bearer " + ds.MintWithHeader(map[string]any{"kid": "no-such-key"}, valid(nil)), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "unknown_key"},
		{name: "no kid", header: "Bearer " + ds.MintWithHeader(map[string]any{"kid": nil}, valid(nil)), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "no_key_id"},
		{name: "crit header", header: "Bearer " + ds.MintWithHeader(map[string]any{"crit": []string{"exp"}}, valid(nil)), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "critical_header"},
		{name: "refresh token", header: "Bearer " + ds.Mint(valid(map[string]any{"drn": "DSR"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "refresh_token"},
		{name: "roles of the wrong type", header: "Bearer " + ds.Mint(valid(map[string]any{"roles": "admin"})), status: 401, challenge: challengeInvalid, body: bodyInvalid, reason: "claim_type"},
		{name: "oversized token", header: "Bearer " + ds.Mint(valid(map[string]any{"pad": strings.Repeat("x", 20<<10)})), status: 401, challenge: challengeInvalid, body: bodyInvalid},
		{name: "missing scope", header: "Bearer " + ds.Mint(valid(map[string]any{"scope": "notes:read"})), status: 403, challenge: challengeScope, body: bodyScope},
		{name: "no scope at all", header: "Bearer " + ds.Mint(valid(map[string]any{"scope": nil})), status: 403, challenge: challengeScope, body: bodyScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.post(t, tc.header)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, tc.body, body)
			if tc.reason != "" {
				_, err := f.p.VerifyToken(context.Background(), strings.TrimPrefix(tc.header, "Bearer "))
				var te *auth.TokenError
				require.ErrorAs(t, err, &te)
				assert.ErrorIs(t, err, auth.ErrInvalidToken)
				assert.Equal(t, tc.reason, te.Reason)
			}
		})
	}
}

func TestVerifyTokenSizeCapBeforeDecoding(t *testing.T) {
	f := newFixture(t, descope.Config{MaxTokenBytes: 512})
	tok := f.ds.Mint(map[string]any{"aud": resourceURL, "pad": strings.Repeat("x", 600)})
	_, err := f.p.VerifyToken(context.Background(), tok)
	var te *auth.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "too_large", te.Reason)
	assert.Nil(t, te.Err)
}

func TestVerifyTokenClaims(t *testing.T) {
	f := newFixture(t, descope.Config{})
	user := descopetest.User{
		Subject:     "U2bob",
		Roles:       []string{"admin"},
		Permissions: []string{"notes.delete"},
		Tenants: map[string]descopetest.Tenant{
			"T1": {Roles: []string{"owner"}, Permissions: []string{"billing.read"}},
		},
		CurrentTenant: "T1",
	}
	f.ds.SetUser(user)
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name     string
		claims   map[string]any
		scopes   []string
		clientID string
	}{
		{"scope string and azp", map[string]any{"scope": "a b  c", "azp": "client-1", "client_id": "client-2"}, []string{"a", "b", "c"}, "client-1"},
		{"scp list and client_id", map[string]any{"scp": []string{"x", "y"}, "azp": nil, "client_id": "client-2"}, []string{"x", "y"}, "client-2"},
		{"scopes string", map[string]any{"scopes": "p q", "azp": nil}, []string{"p", "q"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := map[string]any{"aud": []string{resourceURL, f.ds.ProjectID()}, "exp": exp.Unix()}
			for k, v := range tc.claims {
				claims[k] = v
			}
			c, err := f.p.VerifyToken(context.Background(), f.ds.Mint(claims))
			require.NoError(t, err)
			assert.Equal(t, "U2bob", c.Subject)
			assert.Equal(t, tc.scopes, c.Scopes)
			assert.Equal(t, tc.clientID, c.ClientID)
			assert.Equal(t, []string{resourceURL, f.ds.ProjectID()}, c.Audience)
			assert.Equal(t, f.ds.Issuer(), c.Issuer)
			assert.True(t, exp.Equal(c.ExpiresAt))
			assert.Equal(t, "U2bob", c.Raw["sub"])

			d, ok := c.Extra.(*descope.Claims)
			require.True(t, ok)
			assert.Same(t, c, d.Claims)
			assert.Equal(t, []string{"admin"}, d.Roles)
			assert.Equal(t, []string{"notes.delete"}, d.Permissions)
			assert.Equal(t, map[string]descope.Tenant{"T1": {Roles: []string{"owner"}, Permissions: []string{"billing.read"}}}, d.Tenants)
			assert.Equal(t, "T1", d.CurrentTenant)

			got, ok := descope.ClaimsFromContext(auth.WithClaims(context.Background(), c))
			require.True(t, ok)
			assert.Same(t, d, got)
		})
	}
}

func TestAudienceConfigNarrows(t *testing.T) {
	f := newFixture(t, descope.Config{Audience: []string{resourceURL}})
	_, err := f.p.VerifyToken(context.Background(), f.ds.Mint(map[string]any{"aud": f.ds.ProjectID()}))
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
	_, err = f.p.VerifyToken(context.Background(), f.ds.Mint(map[string]any{"aud": resourceURL}))
	assert.NoError(t, err)
}

func TestProjectLevelConfigRefusesAgenticIssuer(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p, err := descope.New(descope.Config{WellKnownURL: ds.ProjectIssuer(), ServerURL: "https://mcp.example.com"})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL, "iss": ds.ProjectIssuer()}))
	assert.NoError(t, err)
	_, err = p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL, "iss": ds.AgenticIssuer()}))
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
}

func TestKeysNeverLoadedIs503(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	ds.SetJWKSFault(descopetest.FaultUnavailable)
	f := newFixture(t, descope.Config{WellKnownURL: ds.WellKnownURL(), RequiredScopes: []string{"mcp:tools"}})
	resp, body := f.post(t, "Bearer "+ds.Mint(map[string]any{"aud": resourceURL, "scope": "mcp:tools"}))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
	assert.Equal(t, bodyUnavailable, body)

	_, err := f.p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL}))
	assert.ErrorIs(t, err, auth.ErrUnavailable)

	// A request without a token is still told how to sign in.
	resp, body = f.post(t, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, bodyNoToken, body)
}

func TestKeysLoadAfterOutage(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	ds.SetJWKSFault(descopetest.FaultUnavailable)
	p, err := descope.New(descope.Config{WellKnownURL: ds.WellKnownURL(), ServerURL: "https://mcp.example.com", MinKeyRefreshGap: time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	tok := ds.Mint(map[string]any{"aud": resourceURL})
	_, err = p.VerifyToken(context.Background(), tok)
	require.ErrorIs(t, err, auth.ErrUnavailable)

	ds.SetJWKSFault(descopetest.FaultNone)
	// Descope answers again: the next request (past the gap) loads the keys.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = p.VerifyToken(context.Background(), tok)
		if !errors.Is(err, auth.ErrUnavailable) || time.Now().After(deadline) {
			break
		}
	}
	assert.NoError(t, err)
}

func TestRotatedKeyIsPickedUp(t *testing.T) {
	f := newFixture(t, descope.Config{MinKeyRefreshGap: time.Millisecond})
	old := f.ds.Mint(map[string]any{"aud": resourceURL})
	_, err := f.p.VerifyToken(context.Background(), old)
	require.NoError(t, err)
	before := f.ds.JWKSRequests()

	f.ds.RotateKey()
	fresh := f.ds.Mint(map[string]any{"aud": resourceURL})
	_, err = f.p.VerifyToken(context.Background(), fresh)
	require.NoError(t, err, "a token signed with the new key is accepted at once")
	assert.Equal(t, before+1, f.ds.JWKSRequests(), "one fetch for the unknown key")
	_, err = f.p.VerifyToken(context.Background(), old)
	assert.NoError(t, err, "the old key is still published")
}

func TestGarbageKeySetKeepsOldKeys(t *testing.T) {
	f := newFixture(t, descope.Config{MinKeyRefreshGap: time.Millisecond})
	tok := f.ds.Mint(map[string]any{"aud": resourceURL})
	_, err := f.p.VerifyToken(context.Background(), tok)
	require.NoError(t, err)
	for _, fault := range []descopetest.Fault{descopetest.FaultGarbage, descopetest.FaultEmpty, descopetest.FaultUnavailable} {
		f.ds.SetJWKSFault(fault)
		// An unknown kid forces a refresh, which fails.
		_, err = f.p.VerifyToken(context.Background(), f.ds.MintWithHeader(map[string]any{"kid": "other"}, map[string]any{"aud": resourceURL}))
		assert.ErrorIs(t, err, auth.ErrInvalidToken, fault.String())
		_, err = f.p.VerifyToken(context.Background(), tok)
		assert.NoError(t, err, fault.String())
	}
}

func TestTokenCacheServesRepeatedTokens(t *testing.T) {
	f := newFixture(t, descope.Config{})
	tok := f.ds.Mint(map[string]any{"aud": resourceURL})
	first, err := f.p.VerifyToken(context.Background(), tok)
	require.NoError(t, err)
	second, err := f.p.VerifyToken(context.Background(), tok)
	require.NoError(t, err)
	assert.Same(t, first, second, "the second check is a cache hit")

	off := newFixture(t, descope.Config{DisableTokenCache: true})
	tok = off.ds.Mint(map[string]any{"aud": resourceURL})
	first, err = off.p.VerifyToken(context.Background(), tok)
	require.NoError(t, err)
	second, err = off.p.VerifyToken(context.Background(), tok)
	require.NoError(t, err)
	assert.NotSame(t, first, second, "with the cache off every check is full")
	assert.Equal(t, first.Subject, second.Subject)
}

// The middleware leaves a token's syntax to this provider, which finds a
// token it verified before by the token's exact bytes and checks any other
// before parsing it. So no other spelling of an accepted, cached token gets
// in: not with padding, an inner space or characters that a b64token allows
// and a JWT does not, whether the cache is on or off. (Trailing spaces
// never reach the middleware: net/http trims them from header values.)
func TestSpellingsOfACachedTokenAreRefused(t *testing.T) {
	for _, cfg := range []descope.Config{{}, {DisableTokenCache: true}} {
		f := newFixture(t, cfg)
		require.True(t, caller.ChecksSyntax(f.p), "the middleware leaves token syntax to the provider")
		tok := f.ds.Mint(map[string]any{"aud": resourceURL})
		resp, body := f.post(t, "Bearer "+tok)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		dot := strings.LastIndexByte(tok, '.')
		for _, spelling := range []string{
			tok + "=", tok + "==", tok + " x", tok + "~", tok + "+", tok + "/",
			tok[:dot] + "=" + tok[dot:], tok[:dot] + "~" + tok[dot+1:], tok[:10] + "+" + tok[11:],
			"." + tok, tok + ".", tok[:dot] + ".." + tok[dot+1:], tok[:dot],
		} {
			resp, body := f.post(t, "Bearer "+spelling)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "cache off %v: %q", cfg.DisableTokenCache, spelling)
			assert.Equal(t, challengeInvalidNoScope, resp.Header.Get("WWW-Authenticate"), "%q", spelling)
			assert.Equal(t, bodyInvalid, body)
		}
		for _, empty := range []string{"Bearer ", "Bearer    "} {
			resp, body := f.post(t, empty)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%q", empty)
			assert.Equal(t, challengeInvalidNoScope, resp.Header.Get("WWW-Authenticate"), "%q", empty)
			assert.Equal(t, bodyInvalid, body)
		}
		resp, body = f.post(t, "Bearer "+tok)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the token itself still gets in: %s", body)
	}
}

func TestTokenCacheForgetsRemovedKeys(t *testing.T) {
	f := newFixture(t, descope.Config{MinKeyRefreshGap: time.Millisecond})
	oldKid := f.ds.SigningKeyID()
	old := f.ds.Mint(map[string]any{"aud": resourceURL})
	_, err := f.p.VerifyToken(context.Background(), old)
	require.NoError(t, err)

	f.ds.RotateKey()
	f.ds.RemoveKey(oldKid)
	// A token signed with the new key makes the provider fetch the set,
	// which no longer has the old key: its cached tokens go too.
	_, err = f.p.VerifyToken(context.Background(), f.ds.Mint(map[string]any{"aud": resourceURL}))
	require.NoError(t, err)
	_, err = f.p.VerifyToken(context.Background(), old)
	var te *auth.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "unknown_key", te.Reason)
}
