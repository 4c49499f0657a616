package descope_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

const prmPath = "/.well-known/oauth-protected-resource/mcp"

// advertised returns the authorization server the resource metadata names
// and its Cache-Control.
func advertised(t *testing.T, f *fixture) (string, string) {
	t.Helper()
	resp, body := get(t, http.MethodGet, f.srv.URL+prmPath)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	require.Len(t, doc.AuthorizationServers, 1)
	return doc.AuthorizationServers[0], resp.Header.Get("Cache-Control")
}

// forwardedIssuer returns the issuer of the forwarded authorization-server
// metadata, or the status when it is not served.
func forwardedIssuer(t *testing.T, f *fixture) (string, int) {
	t.Helper()
	resp, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server")
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	return doc.Issuer, resp.StatusCode
}

// TestIssuerDriftIsFollowed: the MCP Server's discovery document, fetched
// from the agentic URL, declares the project-level issuer and tokens carry
// it. Once it is fetched, the resource metadata and the forwarded metadata
// both name the project-level issuer, so a client that checks the
// document's issuer against the one it was sent to finds them equal.
func TestIssuerDriftIsFollowed(t *testing.T) {
	f := newFixture(t, descope.Config{}, descopetest.WithIssuerDrift())
	require.Equal(t, f.ds.AgenticIssuer(), f.p.Issuer())
	waitFor(t, func() bool { return f.p.AuthorizationServer() == f.ds.ProjectIssuer() })
	as, cache := advertised(t, f)
	assert.Equal(t, f.ds.ProjectIssuer(), as)
	assert.Equal(t, "public, max-age=300", cache)
	iss, status := forwardedIssuer(t, f)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, f.ds.ProjectIssuer(), iss)

	resp, body := f.post(t, "Bearer "+f.ds.Mint(map[string]any{"aud": resourceURL}))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, f.ds.User().Subject+" ", body)
}

// TestCustomDomainIssuers: the discovery document, fetched from the
// configured origin, declares an issuer on a custom domain. Without
// IssuerOrigins the document is foreign: it is not forwarded, the metadata
// keeps the configured issuer, and the custom domain's tokens are refused.
// With it, all three follow the custom domain.
func TestCustomDomainIssuers(t *testing.T) {
	t.Run("not listed", func(t *testing.T) {
		f := newFixture(t, descope.Config{}, descopetest.WithCustomDomain())
		waitFor(t, func() bool { return f.ds.MetadataRequests() > 0 })
		_, status := forwardedIssuer(t, f)
		assert.Equal(t, http.StatusBadGateway, status)
		as, cache := advertised(t, f)
		assert.Equal(t, f.ds.URL()+"/v1/apps/agentic/"+f.ds.ProjectID()+"/"+f.ds.MCPServerID(), as)
		assert.Equal(t, "no-cache", cache)
		resp, body := f.post(t, "Bearer "+f.ds.Mint(map[string]any{"aud": resourceURL}))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, challengeInvalidNoScope, resp.Header.Get("WWW-Authenticate"))
		assert.Equal(t, bodyInvalid, body)
	})
	t.Run("listed", func(t *testing.T) {
		ds := descopetest.NewServer(descopetest.WithCustomDomain())
		t.Cleanup(ds.Close)
		f := newFixture(t, descope.Config{WellKnownURL: ds.WellKnownURL(), IssuerOrigins: []string{ds.CustomDomainURL()}})
		f.ds = ds
		waitFor(t, func() bool { return f.p.AuthorizationServer() == ds.AgenticIssuer() })
		as, _ := advertised(t, f)
		assert.Equal(t, ds.CustomDomainURL()+"/v1/apps/agentic/"+ds.ProjectID()+"/"+ds.MCPServerID(), as)
		iss, _ := forwardedIssuer(t, f)
		assert.Equal(t, as, iss)
		resp, _ := f.post(t, "Bearer "+ds.Mint(map[string]any{"aud": resourceURL}))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		before := ds.JWKSRequests()
		require.NoError(t, f.p.ReloadKeys(context.Background()))
		assert.Equal(t, before+1, ds.JWKSRequests(), "keys come from the configured origin")
	})
}

// TestForeignDiscoveryIssuerIsIgnored: a discovery document declaring an
// issuer that is not the project's (or one that has no discovery of its
// own, a tenant's) is neither forwarded nor followed, and nothing about it
// reaches a client.
func TestForeignDiscoveryIssuerIsIgnored(t *testing.T) {
	const P, M = "P2aAc4T2V93bddihGEx2Ryhc8e5Z", "MS35d1Xw1Yo6zozsW7n8BU6xLmnAs"
	for _, tc := range []struct {
		name   string
		issuer func(base string) string
	}{
		{"another project", func(b string) string { return b + "/v1/apps/P2otherProject000000000000000" }},
		{"another MCP Server", func(b string) string { return b + "/v1/apps/agentic/" + P + "/MS2other" }},
		{"a tenant of the project", func(b string) string { return b + "/v1/apps/" + P + "/T2acme" }},
		{"another host", func(string) string { return "https://evil.example/v1/apps/" + P }},
		{"a trailing slash", func(b string) string { return b + "/v1/apps/" + P + "/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]string{"issuer": tc.issuer("http://" + r.Host)})
			}))
			t.Cleanup(upstream.Close)
			configured := upstream.URL + "/v1/apps/agentic/" + P + "/" + M
			f := newFixture(t, descope.Config{WellKnownURL: configured + "/.well-known/openid-configuration"})
			resp, body := get(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server")
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Equal(t, `{"error":"temporarily_unavailable","error_description":"The authorization server metadata cannot be fetched right now. Retry later."}`, body)
			assert.NotContains(t, body, upstream.URL)
			as, _ := advertised(t, f)
			assert.Equal(t, configured, as)
			assert.Equal(t, configured, f.p.AuthorizationServer())
		})
	}
}

// TestTenantIssuedTokens: tokens the fake mints under a tenant-scoped
// issuer pass, and their tenant reaches the tools.
func TestTenantIssuedTokens(t *testing.T) {
	f := newFixture(t, descope.Config{}, descopetest.WithTenantIssuer("T2acme"))
	c, err := f.p.VerifyToken(context.Background(), f.ds.Mint(map[string]any{"aud": resourceURL}))
	require.NoError(t, err)
	d := c.Extra.(*descope.Claims)
	assert.Equal(t, "T2acme", d.IssuerTenant)
	assert.Equal(t, "T2acme", d.CurrentTenant)
	assert.Equal(t, f.ds.TenantIssuer(), c.Issuer)

	g := newFixture(t, descope.Config{AllowedTenants: []string{"T2other"}}, descopetest.WithTenantIssuer("T2acme"))
	resp, body := g.post(t, "Bearer "+g.ds.Mint(map[string]any{"aud": resourceURL}))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, bodyInvalid, body)
}

// lockedBuffer collects log output written from background goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDiscoveryLogs: the operator is told when the metadata follows a
// drifted issuer, and why a foreign one is not followed.
func TestDiscoveryLogs(t *testing.T) {
	var drift lockedBuffer
	f := newFixture(t, descope.Config{Logger: slog.New(slog.NewTextHandler(&drift, nil))}, descopetest.WithIssuerDrift())
	waitFor(t, func() bool { return f.p.AuthorizationServer() == f.ds.ProjectIssuer() })
	assert.Equal(t, 1, strings.Count(drift.String(),
		`msg="descope: the discovery document declares another issuer of the project; the protected-resource metadata names it" configured=`+f.ds.AgenticIssuer()+` declared=`+f.ds.ProjectIssuer()))

	var foreign lockedBuffer
	g := newFixture(t, descope.Config{Logger: slog.New(slog.NewTextHandler(&foreign, nil))}, descopetest.WithCustomDomain())
	waitFor(t, func() bool { return strings.Contains(foreign.String(), "declared_issuer=") })
	assert.Contains(t, foreign.String(), `list its origin in Config.IssuerOrigins (DESCOPE_ISSUER_ORIGINS)" url=`+g.ds.WellKnownURL()+` declared_issuer=`+g.ds.AgenticIssuer())
}
