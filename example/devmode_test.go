package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
