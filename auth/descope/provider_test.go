package descope_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
)

const (
	testProject = "P2aAc4T2V93bddihGEx2Ryhc8e5Z"
	testServer  = "MS35d1Xw1Yo6zozsW7n8BU6xLmnAs"
	agenticURL  = "https://api.descope.com/v1/apps/agentic/" + testProject + "/" + testServer + "/.well-known/openid-configuration"
)

func TestNewDerivesResourceAndIssuer(t *testing.T) {
	tests := []struct {
		name        string
		cfg         descope.Config
		resource    string
		metadataURL string
		issuer      string
	}{
		{
			name:        "agentic well-known URL",
			cfg:         descope.Config{WellKnownURL: agenticURL, ServerURL: "https://mcp.example.com"},
			resource:    "https://mcp.example.com/mcp",
			metadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
			issuer:      "https://api.descope.com/v1/apps/agentic/" + testProject + "/" + testServer,
		},
		{
			name:        "issuer URL without suffix, trailing slashes",
			cfg:         descope.Config{WellKnownURL: "https://api.descope.com/v1/apps/agentic/" + testProject + "/" + testServer + "/", ServerURL: "https://MCP.example.com/"},
			resource:    "https://mcp.example.com/mcp",
			metadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
			issuer:      "https://api.descope.com/v1/apps/agentic/" + testProject + "/" + testServer,
		},
		{
			name:        "project-level well-known URL, custom path",
			cfg:         descope.Config{WellKnownURL: "https://api.descope.com/v1/apps/" + testProject + "/.well-known/openid-configuration", ServerURL: "https://mcp.example.com", MCPPath: "/api/v1/mcp/"},
			resource:    "https://mcp.example.com/api/v1/mcp",
			metadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/api/v1/mcp",
			issuer:      "https://api.descope.com/v1/apps/" + testProject,
		},
		{
			name:        "server URL with a path prefix",
			cfg:         descope.Config{ProjectID: testProject, ServerURL: "https://example.com/tools"},
			resource:    "https://example.com/tools/mcp",
			metadataURL: "https://example.com/.well-known/oauth-protected-resource/tools/mcp",
			issuer:      "https://api.descope.com/v1/apps/" + testProject,
		},
		{
			name:        "regional project ID",
			cfg:         descope.Config{ProjectID: "Peuc12gotLL7ZROo6LTAOK1XGv0cqsqX", ServerURL: "http://localhost:8080"},
			resource:    "http://localhost:8080/mcp",
			metadataURL: "http://localhost:8080/.well-known/oauth-protected-resource/mcp",
			issuer:      "https://api.euc1.descope.com/v1/apps/Peuc12gotLL7ZROo6LTAOK1XGv0cqsqX",
		},
		{
			name:        "project ID with base URL",
			cfg:         descope.Config{ProjectID: testProject, BaseURL: "https://auth.example.com", ServerURL: "https://mcp.example.com"},
			resource:    "https://mcp.example.com/mcp",
			metadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
			issuer:      "https://auth.example.com/v1/apps/" + testProject,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := descope.New(tc.cfg)
			require.NoError(t, err)
			defer p.Close()
			res := p.ProtectedResource()
			assert.Equal(t, tc.resource, res.URL)
			assert.Equal(t, tc.metadataURL, res.MetadataURL)
			assert.Equal(t, tc.issuer, p.Issuer())
		})
	}
}

func TestNewExplainsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  descope.Config
		want string
	}{
		{"nothing set", descope.Config{ServerURL: "https://mcp.example.com"},
			"descope: set Config.WellKnownURL (DESCOPE_CONFIG_URL) to your Descope MCP Server's well-known URL, or Config.ProjectID (DESCOPE_PROJECT_ID) to your project ID"},
		{"no server URL", descope.Config{WellKnownURL: agenticURL},
			"descope: set Config.ServerURL (MCP_SERVER_URL) to this server's public base URL, such as https://mcp.example.com"},
		{"plain http Descope URL", descope.Config{WellKnownURL: "http://api.descope.com/v1/apps/" + testProject, ServerURL: "https://mcp.example.com"},
			"descope: Config.WellKnownURL: must use https (plain http is allowed only for localhost)"},
		{"plain http server URL", descope.Config{ProjectID: testProject, ServerURL: "http://mcp.example.com"},
			"descope: Config.ServerURL: must use https (plain http is allowed only for localhost)"},
		{"relative server URL", descope.Config{ProjectID: testProject, ServerURL: "mcp.example.com"},
			`descope: Config.ServerURL: "mcp.example.com" is not an absolute http(s) URL such as https://mcp.example.com`},
		{"server URL with fragment", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com/#x"},
			"descope: Config.ServerURL: must not carry user info, a query or a fragment"},
		{"not a Descope path", descope.Config{WellKnownURL: "https://api.descope.com/oauth/.well-known/openid-configuration", ServerURL: "https://mcp.example.com"},
			`descope: Config.WellKnownURL: "https://api.descope.com/oauth/.well-known/openid-configuration" is not a Descope discovery URL; expected {base}/v1/apps/agentic/{projectID}/{mcpServerID}/.well-known/openid-configuration (copy it from the MCP Server page in the Descope console) or {base}/v1/apps/{projectID}`},
		{"conflicting project", descope.Config{WellKnownURL: agenticURL, ProjectID: "Pother", ServerURL: "https://mcp.example.com"},
			`descope: Config.ProjectID: "Pother" disagrees with the project "` + testProject + `" in WellKnownURL; set only one`},
		{"bad project ID", descope.Config{ProjectID: "P../x", ServerURL: "https://mcp.example.com"},
			`descope: Config.ProjectID: "P../x" is not a Descope project ID (letters and digits, like P2aAc4T2V93bddihGEx2Ryhc8e5Z)`},
		{"base URL with path", descope.Config{ProjectID: testProject, BaseURL: "https://api.descope.com/v1", ServerURL: "https://mcp.example.com"},
			"descope: Config.BaseURL: must be an origin such as https://api.descope.com, without a path"},
		{"symmetric algorithm", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", Algorithms: []string{"HS256"}},
			`descope: Config.Algorithms: "HS256" is not allowed; use asymmetric algorithms only (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`},
		{"none algorithm", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", Algorithms: []string{"none"}},
			`descope: Config.Algorithms: "none" is not allowed; use asymmetric algorithms only (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`},
		{"offline_access required", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", RequiredScopes: []string{"offline_access"}},
			`descope: Config.RequiredScopes: "offline_access" cannot be required of every request; remove it`},
		{"issuer origin with a path", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", IssuerOrigins: []string{"https://auth.example.com/v1"}},
			`descope: Config.IssuerOrigins: "https://auth.example.com/v1" must be an origin such as https://auth.example.com, without a path or trailing slash`},
		{"issuer origin with a trailing slash", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", IssuerOrigins: []string{"https://auth.example.com/"}},
			`descope: Config.IssuerOrigins: "https://auth.example.com/" must be an origin such as https://auth.example.com, without a path or trailing slash`},
		{"issuer origin without a scheme", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", IssuerOrigins: []string{"auth.example.com"}},
			`descope: Config.IssuerOrigins: "auth.example.com" is not an absolute https URL`},
		{"issuer origin over plain http", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", IssuerOrigins: []string{"http://auth.example.com"}},
			"descope: Config.IssuerOrigins: must use https (plain http is allowed only for localhost)"},
		{"issuer origin with a query", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", IssuerOrigins: []string{"https://auth.example.com?x=1"}},
			"descope: Config.IssuerOrigins: must not carry user info, a query or a fragment"},
		{"tenant ID with a slash", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", AllowedTenants: []string{"T2acme/x"}},
			`descope: Config.AllowedTenants: "T2acme/x" is not a Descope tenant ID (letters, digits, '-' and '_', like T2aAc4T2V93bddihGEx2Ryhc8e5Z)`},
		{"tenant ID with a dot", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", AllowedTenants: []string{".."}},
			`descope: Config.AllowedTenants: ".." is not a Descope tenant ID (letters, digits, '-' and '_', like T2aAc4T2V93bddihGEx2Ryhc8e5Z)`},
		{"DPoP mode misspelled", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", DPoP: auth.DPoP{Mode: "require"}},
			`descope: Config.DPoP.Mode: "require" is not "allowed", "required" or "disabled"`},
		{"DPoP symmetric algorithm", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", DPoP: auth.DPoP{Algorithms: []string{"HS256"}}},
			`descope: Config.DPoP.Algorithms: "HS256" is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA`},
		{"DPoP negative window", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", DPoP: auth.DPoP{IATWindow: -time.Second}},
			`descope: Config.DPoP.IATWindow: must not be negative; zero means 5 minutes`},
		{"DPoP short nonce secret", descope.Config{ProjectID: testProject, ServerURL: "https://mcp.example.com", DPoP: auth.DPoP{Nonces: true, NonceSecret: []byte("hunter2")}},
			`descope: Config.DPoP.NonceSecret: must be at least 32 bytes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := descope.New(tc.cfg)
			require.Nil(t, p)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("DESCOPE_CONFIG_URL", " "+agenticURL+" ")
	t.Setenv("DESCOPE_PROJECT_ID", testProject)
	t.Setenv("DESCOPE_BASE_URL", "https://api.descope.com")
	t.Setenv("DESCOPE_ISSUER_ORIGINS", "https://auth.example.com, https://login.example.com")
	t.Setenv("DESCOPE_ALLOWED_TENANTS", "T2alpha T2beta")
	t.Setenv("MCP_SERVER_URL", "https://mcp.example.com")
	t.Setenv("DESCOPE_REQUIRED_SCOPES", "notes:read, mcp:tools")
	t.Setenv("DESCOPE_SCOPES_SUPPORTED", "notes:read notes:write,,offline_access")
	t.Setenv("DESCOPE_AUDIENCE", "https://mcp.example.com/mcp")
	t.Setenv("DESCOPE_DPOP", " Required ")
	t.Setenv("DESCOPE_DPOP_NONCES", "1")
	cfg := descope.ConfigFromEnv()
	assert.Equal(t, descope.Config{
		WellKnownURL:    agenticURL,
		ProjectID:       testProject,
		BaseURL:         "https://api.descope.com",
		IssuerOrigins:   []string{"https://auth.example.com", "https://login.example.com"},
		AllowedTenants:  []string{"T2alpha", "T2beta"},
		ServerURL:       "https://mcp.example.com",
		RequiredScopes:  []string{"notes:read", "mcp:tools"},
		ScopesSupported: []string{"notes:read", "notes:write", "offline_access"},
		Audience:        []string{"https://mcp.example.com/mcp"},
		DPoP:            auth.DPoP{Mode: auth.DPoPRequired, Nonces: true},
	}, cfg)
	p, err := descope.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, []string{"notes:read", "mcp:tools"}, p.ProtectedResource().RequiredScopes)
}
