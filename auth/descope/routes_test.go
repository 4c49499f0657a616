package descope_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://inspector.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestResourceMetadataDPoP: the metadata says what the middleware
// enforces, in each DPoP mode.
func TestResourceMetadataDPoP(t *testing.T) {
	head := `{"resource":"https://mcp.example.com/mcp","authorization_servers":["%s"],"bearer_methods_supported":["header"]`
	tests := []struct {
		name string
		dpop auth.DPoP
		tail string
	}{
		{"allowed, two algorithms", auth.DPoP{Algorithms: []string{"EdDSA", "ES256"}},
			`,"dpop_signing_alg_values_supported":["EdDSA","ES256"]}`},
		{"required", auth.DPoP{Mode: auth.DPoPRequired, Algorithms: []string{"ES256"}},
			`,"dpop_signing_alg_values_supported":["ES256"],"dpop_bound_access_tokens_required":true}`},
		{"disabled", auth.DPoP{Mode: auth.DPoPDisabled, Algorithms: []string{"ES256"}}, `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, descope.Config{DPoP: tt.dpop})
			_, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp")
			assert.Equal(t, fmt.Sprintf(head, f.ds.AgenticIssuer())+tt.tail, body)
		})
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	f := newFixture(t, descope.Config{
		RequiredScopes:        []string{"mcp:tools"},
		ScopesSupported:       []string{"notes:read", "offline_access"},
		ResourceName:          "Notes",
		ResourceDocumentation: "https://docs.example.com/notes",
	})
	want := `{"resource":"https://mcp.example.com/mcp","authorization_servers":["` + f.ds.AgenticIssuer() +
		`"],"scopes_supported":["notes:read","mcp:tools"],"bearer_methods_supported":["header"],` +
		`"resource_name":"Notes","resource_documentation":"https://docs.example.com/notes",` +
		`"dpop_signing_alg_values_supported":["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","ES512","EdDSA"]}`
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		t.Run(path, func(t *testing.T) {
			resp, body := get(t, http.MethodGet, f.srv.URL+path)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, want, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))

			resp, body = get(t, http.MethodHead, f.srv.URL+path)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Empty(t, body)

			resp, body = get(t, http.MethodOptions, f.srv.URL+path)
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			assert.Equal(t, "GET, HEAD, OPTIONS", resp.Header.Get("Access-Control-Allow-Methods"))
			assert.Empty(t, body)

			resp, body = get(t, http.MethodPost, f.srv.URL+path)
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			assert.Equal(t, "GET, HEAD, OPTIONS", resp.Header.Get("Allow"))
			assert.Equal(t, `{"error":"invalid_request","error_description":"Use GET for this document."}`, body)
		})
	}
}

func TestProtectedResourceMetadataAtCustomPath(t *testing.T) {
	f := newFixture(t, descope.Config{MCPPath: "/api/v1/mcp"})
	resp, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/api/v1/mcp")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"resource":"https://mcp.example.com/api/v1/mcp"`)
	assert.NotContains(t, body, "scopes_supported", "nothing to advertise")

	resp, err := http.Post(f.srv.URL+"/api/v1/mcp", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the endpoint moved with the path")
	assert.Equal(t, `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/api/v1/mcp"`, resp.Header.Get("WWW-Authenticate"))
}

func TestAuthorizationServerMetadataForwarding(t *testing.T) {
	f := newFixture(t, descope.Config{MetadataTTL: time.Nanosecond})
	upstream, err := f.ds.Client().Get(f.ds.WellKnownURL())
	require.NoError(t, err)
	want, _ := io.ReadAll(upstream.Body)
	upstream.Body.Close()

	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp, body := get(t, http.MethodGet, f.srv.URL+path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.JSONEq(t, string(want), body, path)
		assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), path)
	}

	// Descope fails: the stale copy is served.
	f.ds.SetMetadataFault(descopetest.FaultUnavailable)
	for i := 0; i < 3; i++ {
		resp, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.JSONEq(t, string(want), body)
	}
}

func TestAuthorizationServerMetadataNeverFetched(t *testing.T) {
	for _, fault := range []descopetest.Fault{descopetest.FaultUnavailable, descopetest.FaultGarbage, descopetest.FaultEmpty} {
		t.Run(fault.String(), func(t *testing.T) {
			ds := descopetest.NewServer()
			t.Cleanup(ds.Close)
			ds.SetMetadataFault(fault)
			f := newFixture(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
			resp, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server")
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Equal(t, `{"error":"temporarily_unavailable","error_description":"The authorization server metadata cannot be fetched right now. Retry later."}`, body)
			assert.NotContains(t, body, ds.URL())
		})
	}
}

func TestMetadataFetchedOnceWhileFresh(t *testing.T) {
	f := newFixture(t, descope.Config{})
	for i := 0; i < 5; i++ {
		resp, _ := get(t, http.MethodGet, f.srv.URL+"/.well-known/openid-configuration")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, int64(1), f.ds.MetadataRequests())
}

func TestRoutesAreNotGuarded(t *testing.T) {
	f := newFixture(t, descope.Config{RequiredScopes: []string{"mcp:tools"}})
	mux := auth.Handler(f.p, http.NotFoundHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, rt := range f.p.Routes() {
		resp, _ := get(t, http.MethodGet, srv.URL+rt.Path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, rt.Path)
	}
}

// TestResourceMetadataBeforeDiscovery: while Descope's discovery document
// has not been fetched (here it hangs), the metadata names the configured
// issuer at once, marked for revalidation, and never waits for Descope.
func TestResourceMetadataBeforeDiscovery(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	ds.SetMetadataFault(descopetest.FaultHang)
	f := newFixture(t, descope.Config{WellKnownURL: ds.WellKnownURL(), FetchTimeout: time.Minute})
	start := time.Now()
	resp, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp")
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"authorization_servers":["`+ds.AgenticIssuer()+`"]`)
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	assert.Equal(t, ds.AgenticIssuer(), f.p.AuthorizationServer())
}

// TestResourceMetadataAfterDiscovery: once the discovery document is
// fetched (in the background, with no request asking), the metadata names
// its issuer and may be cached.
func TestResourceMetadataAfterDiscovery(t *testing.T) {
	f := newFixture(t, descope.Config{})
	waitFor(t, func() bool { return f.ds.MetadataRequests() > 0 })
	waitFor(t, func() bool {
		resp, _ := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp")
		return resp.Header.Get("Cache-Control") == "public, max-age=300"
	})
	_, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp")
	assert.Contains(t, body, `"authorization_servers":["`+f.ds.AgenticIssuer()+`"]`)
}

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

// TestConnectionsAdvertiseTheirScope: once the application enables
// connections, the metadata lists outbound.token.fetch, so that clients
// ask for it; once only, whatever else it lists, and with the
// authorization server the document named before.
func TestConnectionsAdvertiseTheirScope(t *testing.T) {
	tests := []struct {
		name      string
		supported []string
		before    string // the scopes_supported member, "" when absent
		after     string
	}{
		{"nothing advertised before", nil, ``, `"scopes_supported":["outbound.token.fetch"],`},
		{"after the application's scopes", []string{"notes:read"},
			`"scopes_supported":["notes:read"],`, `"scopes_supported":["notes:read","outbound.token.fetch"],`},
		{"already listed", []string{"outbound.token.fetch", "notes:read"},
			`"scopes_supported":["outbound.token.fetch","notes:read"],`, `"scopes_supported":["outbound.token.fetch","notes:read"],`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, descope.Config{ScopesSupported: tt.supported})
			doc := func(scopes string) string {
				return `{"resource":"https://mcp.example.com/mcp","authorization_servers":["` + f.ds.AgenticIssuer() + `"],` +
					scopes + `"bearer_methods_supported":["header"],` +
					`"dpop_signing_alg_values_supported":["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","ES512","EdDSA"]}`
			}
			_, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp")
			assert.Equal(t, doc(tt.before), body)
			for range 2 {
				_, err := f.p.Connections(descope.ConnectionsConfig{})
				require.NoError(t, err)
			}
			_, body = get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp")
			assert.Equal(t, doc(tt.after), body)
		})
	}
}
