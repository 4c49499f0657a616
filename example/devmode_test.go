package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth/descope"
)

// TestDevModeOAuthTokensAreBoundToTheEndpoint signs in through dev mode's
// fake Descope as an MCP client would (registration, PKCE, code, token):
// like the Descope console's MCP Server URL, the fake binds tokens to the
// endpoint when the client names no RFC 8707 resource, and to the resource
// the client names otherwise; the server accepts only tokens for itself.
func TestDevModeOAuthTokensAreBoundToTheEndpoint(t *testing.T) {
	addr := freeAddr(t)
	endpoint := "http://" + addr + "/mcp"
	p := startNotes(t, childEnv("ADDR="+addr, "MCP_SERVER_URL=http://"+addr))
	issuer := lastField(p.waitLine(t, "notes: fake Descope"))
	p.waitLine(t, "notes: token (notes:read only):") // the server accepts connections

	tests := []struct {
		name     string
		resource string // "" leaves the parameter out
		status   int    // answer to a tools/call with the token
	}{
		{"no resource named", "", http.StatusOK},
		{"the endpoint named", endpoint, http.StatusOK},
		{"another server named", "https://other.example.com/mcp", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := devOAuthToken(t, issuer, tc.resource)
			resp, body := rpc(t, endpoint, token, "tools/call", "whoami", nil)
			assert.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.status == http.StatusOK {
				assert.Contains(t, string(body), devUser.Subject)
			}
		})
	}
	p.terminate(t)
}

// devOAuthToken runs the authorization code flow with PKCE against the fake
// Descope at issuer and returns the access token.
func devOAuthToken(t *testing.T, issuer, resource string) string {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var meta struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		Registration  string `json:"registration_endpoint"`
	}
	getJSON(t, issuer+"/.well-known/openid-configuration", &meta)

	const redirectURI = "http://127.0.0.1:9/callback"
	reg, err := json.Marshal(map[string]any{
		"redirect_uris":              []string{redirectURI},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code"},
		"response_types":             []string{"code"},
	})
	require.NoError(t, err)
	resp, err := http.Post(meta.Registration, "application/json", strings.NewReader(string(reg)))
	require.NoError(t, err)
	var client struct {
		ID string `json:"client_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&client))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	verifier := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ID},
		"redirect_uri":          {redirectURI},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {"s"},
		"scope":                 {scopeRead},
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"redirect_uri":  {redirectURI},
		"client_id":     {client.ID},
		"code_verifier": {verifier},
	}
	if resource != "" {
		q.Set("resource", resource)
		form.Set("resource", resource)
	}
	resp, err = noRedirect.Get(meta.Authorization + "?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	form.Set("code", loc.Query().Get("code"))

	resp, err = http.PostForm(meta.Token, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// TestDevModeGitHub: github_profile in dev mode, as a user meets it. The
// metadata asks clients for outbound.token.fetch; a token without it is
// refused with a step-up; the first call answers with the fake Descope's
// connect link; once the link is followed, the call answers from the fake
// GitHub with the dev user's account.
func TestDevModeGitHub(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	endpoint := base + "/mcp"
	p := startNotes(t, childEnv("ADDR="+addr, "MCP_SERVER_URL="+base))
	assert.Regexp(t, `^notes: fake GitHub    http://127\.0\.0\.1:\d+$`, p.waitLine(t, "notes: fake GitHub"))
	full := lastField(p.waitLine(t, "notes: token (notes:read notes:write outbound.token.fetch):"))
	readOnly := lastField(p.waitLine(t, "notes: token (notes:read only):"))

	var prm struct {
		Scopes []string `json:"scopes_supported"`
	}
	getJSON(t, base+"/.well-known/oauth-protected-resource/mcp", &prm)
	assert.Equal(t, []string{scopeRead, scopeWrite, descope.ScopeOutboundTokenFetch}, prm.Scopes)

	resp, body := rpc(t, endpoint, readOnly, "tools/call", "github_profile", nil)
	assertStepUp(t, resp.StatusCode, resp.Header, body, base, descope.ScopeOutboundTokenFetch)

	text, isErr := rpcTool(t, endpoint, full, "github_profile", nil)
	require.True(t, isErr, text)
	m := regexp.MustCompile(`^This tool needs your github account\. Connect it at (http://127\.0\.0\.1:\d+/outbound/connect/\S+), then call this tool again\.$`).FindStringSubmatch(text)
	require.NotNil(t, m, text)
	link, err := http.Get(m[1])
	require.NoError(t, err)
	page, _ := io.ReadAll(link.Body)
	link.Body.Close()
	assert.Equal(t, "connected github\n", string(page))

	text, isErr = rpcTool(t, endpoint, full, "github_profile", nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"login":"dev-user","name":"Dev User"}`, text)
	p.terminate(t)
}

// TestDevModeWithoutGitHub: GITHUB_OUTBOUND_APP set but empty turns
// github_profile off in dev mode, and outbound.token.fetch is then not
// advertised.
func TestDevModeWithoutGitHub(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	p := startNotes(t, childEnv("ADDR="+addr, "MCP_SERVER_URL="+base, "GITHUB_OUTBOUND_APP="))
	full := lastField(p.waitLine(t, "notes: token (notes:read notes:write outbound.token.fetch):"))
	tools := p.waitLine(t, "notes: tools:")
	assert.NotContains(t, tools, "github_profile")
	assert.NotContains(t, p.stdout(), "fake GitHub")
	var prm struct {
		Scopes []string `json:"scopes_supported"`
	}
	getJSON(t, base+"/.well-known/oauth-protected-resource/mcp", &prm)
	assert.Equal(t, []string{scopeRead, scopeWrite}, prm.Scopes)
	assert.NotContains(t, listTools(t, base+"/mcp", full), "github_profile")
	p.terminate(t)
}
