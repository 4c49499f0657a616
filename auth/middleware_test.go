package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
)

// tableProvider is a provider whose verdicts are fixed per token, so the
// middleware's wire behaviour can be tested on its own.
type tableProvider struct {
	res   auth.ProtectedResource
	calls atomic.Int64
}

func (p *tableProvider) VerifyToken(_ context.Context, token string) (*auth.Claims, error) {
	p.calls.Add(1)
	switch token {
	case "good":
		return &auth.Claims{Subject: "U1", Scopes: []string{"mcp:tools", "notes:read"}}, nil
	case "noscope":
		return &auth.Claims{Subject: "U2", Scopes: []string{"notes:read"}}, nil
	case "bad":
		return nil, auth.Invalid("expired", errors.New("token expired at 10:00 from https://internal.example/jwks"))
	case "down":
		return nil, auth.Unavailable("no_keys", errors.New("dial tcp 10.0.0.1:443: connection refused"))
	default:
		return nil, errors.New("unclassified failure with details")
	}
}

func (p *tableProvider) ProtectedResource() auth.ProtectedResource { return p.res }

func (p *tableProvider) Routes() []auth.Route {
	return []auth.Route{{Path: "/.well-known/oauth-protected-resource/mcp", Handler: http.HandlerFunc(
		func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"resource":"x"}`) })}}
}

const (
	prmURL       = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	wantNoToken  = `Bearer scope="mcp:tools", resource_metadata="` + prmURL + `"`
	wantInvalid  = `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not issued for this server.", scope="mcp:tools", resource_metadata="` + prmURL + `"`
	wantScope    = `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="mcp:tools", resource_metadata="` + prmURL + `"`
	bodyNoToken  = `{"error":"unauthorized","error_description":"This endpoint requires an OAuth access token in the Authorization header."}`
	bodyInvalid  = `{"error":"invalid_token","error_description":"The access token is invalid, expired, or not issued for this server."}`
	bodyScope    = `{"error":"insufficient_scope","error_description":"The access token does not grant the scope this request requires."}`
	bodyDown     = `{"error":"temporarily_unavailable","error_description":"Access tokens cannot be verified right now. Retry later with the same token."}`
	okBodyPrefix = "hello "
)

func newTestServer(t *testing.T, required ...string) (*httptest.Server, *tableProvider) {
	t.Helper()
	p := &tableProvider{res: auth.ProtectedResource{
		URL:            "https://mcp.example.com/mcp",
		MetadataURL:    prmURL,
		RequiredScopes: required,
	}}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := auth.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, okBodyPrefix+c.Subject)
	})
	srv := httptest.NewServer(auth.Handler(p, next))
	t.Cleanup(srv.Close)
	return srv, p
}

func TestMiddlewareResponses(t *testing.T) {
	srv, _ := newTestServer(t, "mcp:tools")
	tests := []struct {
		name       string
		method     string
		path       string
		headers    []string // name, value pairs; a name may repeat
		body       string
		status     int
		challenge  string
		wantBody   string
		retryAfter string
	}{
		{name: "valid token", headers: []string{"Authorization", "Bearer good"}, status: 200, wantBody: "hello U1"},
		{name: "scheme is case-insensitive", headers: []string{"Authorization", "bEARER good"}, status: 200, wantBody: "hello U1"},
		{name: "GET is guarded", method: "GET", status: 401, challenge: wantNoToken, wantBody: bodyNoToken},
		{name: "DELETE is guarded", method: "DELETE", status: 401, challenge: wantNoToken, wantBody: bodyNoToken},
		{name: "GET with token", method: "GET", headers: []string{"Authorization", "Bearer good"}, status: 200, wantBody: "hello U1"},
		{name: "missing header", status: 401, challenge: wantNoToken, wantBody: bodyNoToken},
		{name: "wrong scheme", headers: []string{"Authorization", "Basic dXNlcjpwYXNz"}, status: 401, challenge: wantNoToken, wantBody: bodyNoToken},
		{name: "scheme without token", headers: []string{"Authorization", "Bearer"}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "scheme with blank token", headers: []string{"Authorization", "Bearer   "}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "two tokens", headers: []string{"Authorization", "Bearer good good"}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "two headers", headers: []string{"Authorization", "Bearer good", "Authorization", "Bearer good"}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "token with a character outside b64token", headers: []string{"Authorization", "Bearer go;od"}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "oversized header", headers: []string{"Authorization", "Bearer " + strings.Repeat("a", auth.DefaultMaxHeaderBytes)}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "token in query string", path: "/mcp?access_token=good", status: 401, challenge: wantNoToken, wantBody: bodyNoToken},
		{name: "token in form body", headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, body: "access_token=good", status: 401, challenge: wantNoToken, wantBody: bodyNoToken},
		{name: "invalid token", headers: []string{"Authorization", "Bearer bad"}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "unclassified provider error", headers: []string{"Authorization", "Bearer weird"}, status: 401, challenge: wantInvalid, wantBody: bodyInvalid},
		{name: "missing scope", headers: []string{"Authorization", "Bearer noscope"}, status: 403, challenge: wantScope, wantBody: bodyScope},
		{name: "provider unavailable", headers: []string{"Authorization", "Bearer down"}, status: 503, wantBody: bodyDown, retryAfter: "5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			path := tc.path
			if path == "" {
				path = "/mcp"
			}
			req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(tc.body))
			require.NoError(t, err)
			for i := 0; i < len(tc.headers); i += 2 {
				req.Header.Add(tc.headers[i], tc.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)

			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.wantBody, string(body))
			assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, tc.retryAfter, resp.Header.Get("Retry-After"))
			if tc.status != 200 {
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
				assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no CORS headers without Origin")
			}
		})
	}
}

func TestMiddlewareOversizedHeaderNeverReachesProvider(t *testing.T) {
	srv, p := newTestServer(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", auth.DefaultMaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Zero(t, p.calls.Load())
}

func TestMiddlewareWithoutRequiredScopes(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, err := http.Post(srv.URL+"/mcp", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, `Bearer resource_metadata="`+prmURL+`"`, resp.Header.Get("WWW-Authenticate"))

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer noscope")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

const bodyOrigin = `{"error":"invalid_request","error_description":"Requests from this Origin are not allowed."}`

// TestOrigins: a present Origin that is not allowed gets 403 before
// anything else, the token is never looked at, and an allowed origin can
// read the challenge.
func TestOrigins(t *testing.T) {
	p := &tableProvider{res: auth.ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: prmURL}}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "next "+r.Method)
	})
	byDefault := httptest.NewServer(auth.Handler(p, next))
	t.Cleanup(byDefault.Close)
	listed := httptest.NewServer(auth.Handler(p, next,
		auth.WithAllowedOrigins("https://app.example.com", "http://localhost:*", "http://[::1]:*")))
	t.Cleanup(listed.Close)

	for _, tc := range []struct {
		name, url, method, origin, token string
		status                           int
		body, allowOrigin                string
	}{
		{"no origin, no token", byDefault.URL, "POST", "", "", 401, bodyNoToken, ""},
		{"the resource's own origin", byDefault.URL, "POST", "https://mcp.example.com", "", 401, bodyNoToken, "https://mcp.example.com"},
		{"own origin, default port spelled out", byDefault.URL, "POST", "https://mcp.example.com:443", "", 401, bodyNoToken, "https://mcp.example.com:443"},
		{"own origin in capitals", byDefault.URL, "POST", "HTTPS://MCP.EXAMPLE.COM", "good", 200, "next POST", "HTTPS://MCP.EXAMPLE.COM"},
		{"another site", byDefault.URL, "POST", "http://evil.example", "good", 403, bodyOrigin, ""},
		{"another site, no token", byDefault.URL, "POST", "http://evil.example", "", 403, bodyOrigin, ""},
		{"same host over http", byDefault.URL, "POST", "http://mcp.example.com", "good", 403, bodyOrigin, ""},
		{"same host, other port", byDefault.URL, "POST", "https://mcp.example.com:8443", "good", 403, bodyOrigin, ""},
		{"suffix trick", byDefault.URL, "POST", "https://mcp.example.com.evil.example", "good", 403, bodyOrigin, ""},
		{"opaque origin", byDefault.URL, "POST", "null", "good", 403, bodyOrigin, ""},
		{"GET stream from another site", byDefault.URL, "GET", "http://evil.example", "good", 403, bodyOrigin, ""},
		{"DELETE from another site", byDefault.URL, "DELETE", "http://evil.example", "good", 403, bodyOrigin, ""},
		{"preflight from another site", byDefault.URL, "OPTIONS", "http://evil.example", "", 403, bodyOrigin, ""},
		{"OPTIONS that is no preflight reaches the server", byDefault.URL, "OPTIONS", "https://mcp.example.com", "", 200, "next OPTIONS", "https://mcp.example.com"},
		{"preflight from the resource's origin", byDefault.URL, "PREFLIGHT", "https://mcp.example.com", "", 204, "", "https://mcp.example.com"},
		{"preflight from a listed origin", listed.URL, "PREFLIGHT", "http://localhost:6274", "", 204, "", "http://localhost:6274"},
		{"real preflight from another site", listed.URL, "PREFLIGHT", "http://evil.example", "", 403, bodyOrigin, ""},
		{"listed origin", listed.URL, "POST", "https://app.example.com", "good", 200, "next POST", "https://app.example.com"},
		{"listed origin, refused token", listed.URL, "POST", "https://app.example.com", "bad", 401, bodyInvalid, "https://app.example.com"},
		{"loopback, any port", listed.URL, "POST", "http://localhost:6274", "good", 200, "next POST", "http://localhost:6274"},
		{"IPv6 loopback, any port", listed.URL, "POST", "http://[::1]:6274", "good", 200, "next POST", "http://[::1]:6274"},
		{"loopback over https is another origin", listed.URL, "POST", "https://localhost:6274", "good", 403, bodyOrigin, ""},
		{"the default is replaced", listed.URL, "POST", "https://mcp.example.com", "good", 403, bodyOrigin, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.calls.Load()
			method := tc.method
			if method == "PREFLIGHT" {
				method = http.MethodOptions
			}
			req, _ := http.NewRequest(method, tc.url+"/mcp", nil)
			if tc.method == "PREFLIGHT" {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version, dpop")
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.body, string(body))
			assert.Equal(t, tc.allowOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
			if tc.allowOrigin != "" {
				assert.Equal(t, "WWW-Authenticate, DPoP-Nonce, Mcp-Session-Id, Mcp-Protocol-Version", resp.Header.Get("Access-Control-Expose-Headers"))
				assert.Equal(t, []string{"Origin"}, resp.Header.Values("Vary"))
			}
			if tc.status == http.StatusNoContent {
				assert.Equal(t, "GET, POST, DELETE, OPTIONS", resp.Header.Get("Access-Control-Allow-Methods"))
				assert.Equal(t, "Authorization, Content-Type, Accept, DPoP, Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Protocol-Version, Mcp-Session-Id",
					resp.Header.Get("Access-Control-Allow-Headers"))
				assert.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))
				assert.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"))
				assert.Equal(t, before, p.calls.Load(), "a preflight carries no token and none is looked at")
			}
			if tc.status == http.StatusForbidden {
				assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
				assert.Equal(t, before, p.calls.Load(), "the token is never looked at")
			}
		})
	}
}

func TestHandlerServesRoutesUnguarded(t *testing.T) {
	srv, p := newTestServer(t, "mcp:tools")
	resp, err := http.Get(srv.URL + "/.well-known/oauth-protected-resource/mcp")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{"resource":"x"}`, string(body))
	assert.Zero(t, p.calls.Load())

	resp, err = http.Get(srv.URL + "/elsewhere")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestRefusalsNeverLeakDetails(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, token := range []string{"bad", "down", "weird"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		all := string(body) + resp.Header.Get("WWW-Authenticate")
		for _, secret := range []string{"internal.example", "10.0.0.1", "unclassified", "expired at", token} {
			assert.NotContains(t, all, secret, "token %q", token)
		}
	}
}

func TestTokenErrorIsAndAs(t *testing.T) {
	cause := errors.New("cause")
	err := error(auth.Invalid("expired", cause))
	wrapped := errors.Join(errors.New("outer"), err)
	assert.ErrorIs(t, wrapped, auth.ErrInvalidToken)
	assert.ErrorIs(t, wrapped, cause)
	assert.NotErrorIs(t, wrapped, auth.ErrUnavailable)
	var te *auth.TokenError
	require.ErrorAs(t, wrapped, &te)
	assert.Equal(t, "expired", te.Reason)
	assert.Equal(t, "auth: invalid token (expired): cause", err.Error())
}

func TestClaimsFromContext(t *testing.T) {
	_, ok := auth.ClaimsFromContext(context.Background())
	assert.False(t, ok)
	_, ok = auth.ClaimsFromContext(auth.WithClaims(context.Background(), nil))
	assert.False(t, ok)
	c := &auth.Claims{Subject: "U1", Scopes: []string{"a"}, ExpiresAt: time.Unix(1, 0)}
	got, ok := auth.ClaimsFromContext(auth.WithClaims(context.Background(), c))
	require.True(t, ok)
	assert.Same(t, c, got)
	assert.True(t, got.HasScope("a"))
	assert.False(t, got.HasScope("b"))
}

func TestSessionSecretWarning(t *testing.T) {
	p := &tableProvider{res: auth.ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: prmURL}}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))

	_ = server.NewStreamableHTTPServer(server.NewMCPServer("t", "1"),
		auth.WithProvider(p, auth.WithLogger(log), auth.WithSessionSecret([]byte("0123456789abcdef0123456789abcdef"))))
	assert.Empty(t, logs.String(), "WithProvider uses the secret")

	_ = auth.Handler(p, http.NotFoundHandler(), auth.WithLogger(log), auth.WithSessionSecret([]byte("x")))
	assert.Contains(t, logs.String(), "WithSessionSecret has no effect on Middleware or Handler")
}

// TestHalfSentBodies: a body that never arrives does not hold a
// connection: refused unread when the token is missing, cut after the body
// read timeout when it is valid.
func TestHalfSentBodies(t *testing.T) {
	p := &tableProvider{res: auth.ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: prmURL}}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	srv := httptest.NewServer(auth.Handler(p, next, auth.WithBodyReadTimeout(200*time.Millisecond)))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, auth string
		status     string
	}{
		{"no token", "", "HTTP/1.1 401 Unauthorized"},
		{"valid token", "Authorization: Bearer good\r\n", "HTTP/1.1 400 Bad Request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			require.NoError(t, err)
			defer conn.Close()
			_, err = io.WriteString(conn, "POST /mcp HTTP/1.1\r\nHost: mcp.example.com\r\nContent-Type: application/json\r\n"+
				tc.auth+"Content-Length: 1000\r\n\r\n{")
			require.NoError(t, err)
			// Far longer than the server should take: a timeout here is the failure.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			all, err := io.ReadAll(conn)
			require.NoError(t, err, "the server kept the connection open")
			assert.True(t, strings.HasPrefix(string(all), tc.status+"\r\n"), "%q", all)
			assert.Contains(t, string(all), "\r\nConnection: close\r\n")
		})
	}
}

// TestAllowedOriginsThatAreNotOrigins: a configured entry that is not an
// origin allows nothing, and the log says which.
func TestAllowedOriginsThatAreNotOrigins(t *testing.T) {
	p := &tableProvider{res: auth.ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: prmURL}}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	_ = auth.Handler(p, http.NotFoundHandler(), auth.WithLogger(log),
		auth.WithAllowedOrigins("https://app.example.com", "https://app.example.com/", "ftp://files.example.com"))
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"))
	assert.Contains(t, logs.String(), `entries="[https://app.example.com/ ftp://files.example.com]"`)

	logs.Reset()
	_ = auth.Handler(p, http.NotFoundHandler(), auth.WithLogger(log), auth.WithAllowedOrigins("http://localhost:*"))
	assert.Empty(t, logs.String())
}
