package descope_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// customDomain stands for a customer's own Descope API host.
const customDomain = "https://auth.example.com"

// issuerCase is one "iss" and what the endpoint must answer it with.
type issuerCase struct {
	name   string
	iss    any
	tenant string // the IssuerTenant of an accepted token
	ok     bool
}

// serveIssuers runs the cases against p over HTTP: an accepted token
// reaches the handler, which answers with the caller's subject and
// IssuerTenant; a refused one gets the exact 401 of an invalid token, and
// VerifyToken says why: the issuer.
func serveIssuers(t *testing.T, ds *descopetest.Server, p *descope.Provider, cases []issuerCase) {
	t.Helper()
	srv := httptest.NewServer(auth.Handler(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := descope.ClaimsFromContext(r.Context())
		_, _ = io.WriteString(w, c.Subject+" tenant="+c.IssuerTenant)
	})))
	t.Cleanup(srv.Close)
	const challenge = `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not issued for this server.", resource_metadata="` + metadataURL + `"`
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := ds.Mint(map[string]any{"aud": resourceURL, "iss": tc.iss})
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.ok {
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, ds.User().Subject+" tenant="+tc.tenant, string(body))
				assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
				return
			}
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, challenge, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, bodyInvalid, string(body))
			if s, ok := tc.iss.(string); ok && s != "" {
				assert.NotContains(t, string(body), s)
			}
			_, err = p.VerifyToken(context.Background(), tok)
			var te *auth.TokenError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, "issuer", te.Reason)
		})
	}
}

func newIssuerProvider(t *testing.T, ds *descopetest.Server, cfg descope.Config) *descope.Provider {
	t.Helper()
	if cfg.WellKnownURL == "" && cfg.ProjectID == "" {
		cfg.WellKnownURL = ds.AgenticIssuer() + "/.well-known/openid-configuration"
	}
	cfg.ServerURL = "https://mcp.example.com"
	p, err := descope.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestIssuerForms: every issuer form of the configured project and MCP
// Server is accepted, on the configured origin and on the extra origin of
// IssuerOrigins, and nothing that merely looks like one.
func TestIssuerForms(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := newIssuerProvider(t, ds, descope.Config{IssuerOrigins: []string{customDomain}})
	base, P, M := ds.URL(), ds.ProjectID(), ds.MCPServerID()
	apps := base + "/v1/apps/"
	serveIssuers(t, ds, p, []issuerCase{
		{name: "agentic, the configured MCP Server", iss: apps + "agentic/" + P + "/" + M, ok: true},
		{name: "project-level", iss: apps + P, ok: true},
		{name: "tenant-scoped", iss: apps + P + "/T2tenant000000000000000000000", tenant: "T2tenant000000000000000000000", ok: true},
		{name: "tenant ID with - and _", iss: apps + P + "/acme-corp_1", tenant: "acme-corp_1", ok: true},
		{name: "custom domain, agentic", iss: customDomain + "/v1/apps/agentic/" + P + "/" + M, ok: true},
		{name: "custom domain, project-level", iss: customDomain + "/v1/apps/" + P, ok: true},
		{name: "custom domain, tenant-scoped", iss: customDomain + "/v1/apps/" + P + "/T2acme", tenant: "T2acme", ok: true},

		{name: "another project", iss: apps + "P2otherProject000000000000000"},
		{name: "another project's agentic issuer", iss: apps + "agentic/P2otherProject000000000000000/" + M},
		{name: "another MCP Server", iss: apps + "agentic/" + P + "/MS2otherServer00000000000000"},
		{name: "another project's tenant", iss: apps + "P2otherProject000000000000000/T2acme"},
		{name: "project ID as a prefix of another", iss: apps + P + "x"},
		{name: "agentic without an MCP Server", iss: apps + "agentic/" + P},
		{name: "deeper than a tenant", iss: apps + P + "/T2acme/extra"},
		{name: "deeper than the MCP Server", iss: apps + "agentic/" + P + "/" + M + "/T2acme"},
		{name: "empty tenant segment", iss: apps + P + "/"},
		{name: "trailing slash after the tenant", iss: apps + P + "/T2acme/"},
		{name: "trailing slash after the MCP Server", iss: apps + "agentic/" + P + "/" + M + "/"},
		{name: "double slash", iss: base + "/v1/apps//" + P},
		{name: "another host", iss: "https://evil.example/v1/apps/" + P},
		{name: "custom domain as a prefix of another host", iss: customDomain + ".evil.example/v1/apps/" + P},
		{name: "custom domain as user info", iss: customDomain + "@evil.example/v1/apps/" + P},
		{name: "another port", iss: strings.Replace(base, "127.0.0.1:", "127.0.0.1:1", 1) + "/v1/apps/" + P},
		{name: "default port spelled out", iss: customDomain + ":443/v1/apps/" + P},
		{name: "http instead of https", iss: "http://auth.example.com/v1/apps/" + P},
		{name: "host in upper case", iss: "https://AUTH.example.com/v1/apps/" + P},
		{name: "scheme in upper case", iss: "HTTPS://auth.example.com/v1/apps/" + P},
		{name: "path in upper case", iss: base + "/V1/Apps/" + P},
		{name: "project ID in lower case", iss: apps + strings.ToLower(P)},
		{name: "percent-encoded project ID", iss: apps + "%50" + P[1:]},
		{name: "percent-encoded slash before the tenant", iss: apps + P + "%2FT2acme"},
		{name: "dot-dot segment", iss: apps + "P2otherProject000000000000000/../" + P},
		{name: "dot-dot as the tenant", iss: apps + P + "/.."},
		{name: "dot as the tenant", iss: apps + P + "/."},
		{name: "tenant with a character Descope IDs lack", iss: apps + P + "/T2acme!"},
		{name: "tenant ID over 64 characters", iss: apps + P + "/" + strings.Repeat("T", 65)},
		{name: "query", iss: apps + P + "?tenant=T2acme"},
		{name: "fragment", iss: apps + P + "#T2acme"},
		{name: "leading space", iss: " " + apps + P},
		{name: "oauth2 endpoint path", iss: base + "/oauth2/v1/apps/" + P},
		{name: "session-token issuer: the project ID", iss: P},
		{name: "session-token issuer: base and project ID", iss: base + "/" + P},
		{name: "empty", iss: ""},
		{name: "not a string", iss: 42},
		{name: "a list", iss: []string{apps + P}},
	})
}

// TestIssuerTenantAllowList: with AllowedTenants, only those tenants'
// issuers pass; the agentic and project-level forms are unaffected.
func TestIssuerTenantAllowList(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := newIssuerProvider(t, ds, descope.Config{AllowedTenants: []string{"T2alpha", " T2beta "}})
	apps := ds.URL() + "/v1/apps/" + ds.ProjectID()
	serveIssuers(t, ds, p, []issuerCase{
		{name: "allowed tenant", iss: apps + "/T2alpha", tenant: "T2alpha", ok: true},
		{name: "allowed tenant, trimmed in the list", iss: apps + "/T2beta", tenant: "T2beta", ok: true},
		{name: "tenant not in the list", iss: apps + "/T2gamma"},
		{name: "allowed tenant in another case", iss: apps + "/t2alpha"},
		{name: "project-level", iss: apps, ok: true},
		{name: "agentic", iss: ds.AgenticIssuer(), ok: true},
		{name: "custom domain not configured", iss: customDomain + "/v1/apps/" + ds.ProjectID() + "/T2alpha"},
	})
}

// TestIssuerFormsOfAProjectConfiguration: configured with a project, not
// an MCP Server, no agentic issuer is accepted; project-level and tenant
// forms are.
func TestIssuerFormsOfAProjectConfiguration(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := newIssuerProvider(t, ds, descope.Config{ProjectID: ds.ProjectID(), BaseURL: ds.URL()})
	apps := ds.URL() + "/v1/apps/"
	serveIssuers(t, ds, p, []issuerCase{
		{name: "project-level", iss: apps + ds.ProjectID(), ok: true},
		{name: "tenant-scoped", iss: apps + ds.ProjectID() + "/T2acme", tenant: "T2acme", ok: true},
		{name: "agentic", iss: ds.AgenticIssuer()},
		{name: "agentic as a tenant", iss: apps + ds.ProjectID() + "/agentic/" + ds.MCPServerID()},
	})
}
