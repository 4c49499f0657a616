package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// githubFixture runs github_profile behind the middleware, against a fake
// Descope vault and a GitHub API whose answer each test chooses.
type githubFixture struct {
	ds     *descopetest.Server
	srv    *httptest.Server // the protected tool
	answer atomic.Pointer[func(w http.ResponseWriter, r *http.Request)]
	seen   atomic.Value // the Authorization header GitHub last saw
}

func newGitHubFixture(t *testing.T) *githubFixture {
	t.Helper()
	f := &githubFixture{ds: descopetest.NewServer(descopetest.WithUser(descopetest.User{Subject: "U2alice"}))}
	t.Cleanup(f.ds.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.seen.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization"))
		(*f.answer.Load())(w, r)
	}))
	t.Cleanup(api.Close)
	p, err := descope.New(descope.Config{WellKnownURL: f.ds.WellKnownURL(), ServerURL: "http://localhost:8080"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	apiURL, err := checkGitHubAPI(api.URL + "/")
	require.NoError(t, err)
	g, err := newGitHubTool(p, "github", apiURL)
	require.NoError(t, err)
	f.srv = httptest.NewServer(auth.Handler(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := g.profile(r.Context(), mcp.CallToolRequest{})
		require.NoError(t, err)
		_ = json.NewEncoder(w).Encode(res)
	})))
	t.Cleanup(f.srv.Close)
	return f
}

// call runs the tool for alice and returns its text and whether it is a
// tool error.
func (f *githubFixture) call(t *testing.T) (string, bool) {
	t.Helper()
	token := f.ds.Mint(map[string]any{"aud": "http://localhost:8080/mcp", "scope": descope.ScopeOutboundTokenFetch})
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/mcp", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var res mcp.CallToolResult
	require.NoError(t, json.Unmarshal(body, &res), string(body))
	return resultText(t, &res), res.IsError
}

// TestGitHubProfile: the tool asks GitHub with the caller's own connection
// token and reports only login and name; GitHub's failures become fixed
// texts that name no address.
func TestGitHubProfile(t *testing.T) {
	f := newGitHubFixture(t)
	reply := func(status int, body string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	f.answer.Store(new(reply(200, `{"login":"octo"}`)))

	text, isErr := f.call(t)
	assert.True(t, isErr)
	m := regexp.MustCompile(`^This tool needs your github account\. Connect it at (http://\S+), then call this tool again\.$`).FindStringSubmatch(text)
	require.NotNil(t, m, text)
	assert.Nil(t, f.seen.Load(), "GitHub is not asked before the user connected")
	f.ds.ConnectOutboundApp("U2alice", "github", "read:user")

	tests := []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request)
		want   string
		isErr  bool
	}{
		{"GitHub answers", reply(200, `{"login":"octo","name":"Octo Cat","email":"octo@example.com","id":1}`), `{"login":"octo","name":"Octo Cat"}`, false},
		{"GitHub refuses the token", reply(401, `{"message":"Bad credentials"}`), msgGitHubRefused, true},
		{"GitHub fails", reply(502, `upstream 10.1.2.3 down`), msgGitHubUnreachable, true},
		{"GitHub answers garbage", reply(200, `<html>`), msgGitHubUnreachable, true},
		{"GitHub answers no login", reply(200, `{"name":"x"}`), msgGitHubUnreachable, true},
		{"GitHub redirects", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, msgGitHubUnreachable, true},
		{"GitHub drops the connection", func(w http.ResponseWriter, _ *http.Request) { panic(http.ErrAbortHandler) }, msgGitHubUnreachable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.answer.Store(&tt.answer)
			text, isErr := f.call(t)
			assert.Equal(t, tt.want, text)
			assert.Equal(t, tt.isErr, isErr)
			seen, _ := f.seen.Load().(string) // the last request: a redirect was not followed
			method, token, _ := strings.Cut(strings.TrimPrefix(seen, "GET /user "), " ")
			require.Equal(t, "Bearer", method, seen)
			sub, app, scopes, ok := f.ds.OutboundToken(token)
			assert.True(t, ok, "GitHub saw the vault's token for the caller")
			assert.Equal(t, []string{"U2alice", "github", "read:user"}, []string{sub, app, strings.Join(scopes, " ")})
		})
	}
}

// TestGitHubRefusalForgetsTheToken: after GitHub refused the token, the
// next call fetches the user's token from Descope again instead of the
// cached one.
func TestGitHubRefusalForgetsTheToken(t *testing.T) {
	f := newGitHubFixture(t)
	f.ds.ConnectOutboundApp("U2alice", "github", "read:user")
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"login":"octo"}`) }
	refuse := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }
	f.answer.Store(new(ok))
	f.call(t)
	f.call(t)
	require.EqualValues(t, 1, f.ds.OutboundTokenRequests(), "cached")
	f.answer.Store(new(refuse))
	text, _ := f.call(t)
	assert.Equal(t, msgGitHubRefused, text)
	f.answer.Store(new(ok))
	text, isErr := f.call(t)
	assert.False(t, isErr, text)
	assert.EqualValues(t, 2, f.ds.OutboundTokenRequests(), "asked Descope again")
}

// TestFakeGitHub: dev mode's stand-in answers only tokens the fake vault
// handed out for its GitHub app with read:user, as GitHub answers bad
// credentials.
func TestFakeGitHub(t *testing.T) {
	ds := descopetest.NewServer(descopetest.WithUser(devUser))
	t.Cleanup(ds.Close)
	gh, err := startFakeGitHub(ds)
	require.NoError(t, err)
	t.Cleanup(gh.Close)
	// What the fake vault hands out, asked as Connections.Token asks.
	vaultToken := func(app string, scopes ...string) string {
		ds.ConnectOutboundApp(devUser.Subject, app, scopes...)
		body := `{"appId":"` + app + `","userId":"` + devUser.Subject + `","options":{}}`
		req, _ := http.NewRequest(http.MethodPost, ds.URL()+"/v1/mgmt/outbound/app/user/token/latest", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ds.ProjectID()+":"+ds.Mint(map[string]any{"scope": descope.ScopeOutboundTokenFetch}))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var answer struct {
			Token struct {
				AccessToken string `json:"accessToken"`
			} `json:"token"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
		require.NotEmpty(t, answer.Token.AccessToken)
		return answer.Token.AccessToken
	}
	get := func(authorization string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, gh.url+"/user", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	const bad = `{"message":"Bad credentials","status":"401"}`
	status, body := get("")
	assert.Equal(t, 401, status)
	assert.Equal(t, bad, body)
	// One at a time: connecting again replaces the app's earlier token.
	for _, tc := range []struct {
		name          string
		authorization func() string
	}{
		{"an unknown token", func() string { return "Bearer tp-unknown" }},
		{"another app's token", func() string { return "Bearer " + vaultToken("gitlab", "read:user") }},
		{"a token without read:user", func() string { return "Bearer " + vaultToken(devGitHubApp, "repo") }},
		{"the token in another scheme", func() string { return "token " + vaultToken(devGitHubApp, "read:user") }},
	} {
		status, body := get(tc.authorization())
		assert.Equal(t, 401, status, tc.name)
		assert.Equal(t, bad, body, tc.name)
	}
	status, body = get("Bearer " + vaultToken(devGitHubApp, "read:user"))
	assert.Equal(t, 200, status)
	assert.Equal(t, `{"login":"dev-user","name":"Dev User"}`, body)
}

// TestGitHubFromEnv: against a real-shaped Descope, github_profile exists
// only when GITHUB_OUTBOUND_APP names the outbound app, and the metadata
// asks for outbound.token.fetch only then; it fetches that app's token and
// asks GITHUB_API_URL.
func TestGitHubFromEnv(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, app, _, ok := ds.OutboundToken(token); !ok || app != "gh-prod" || r.URL.Path != "/api/v3/user" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"login":"alice-gh","name":"Alice"}`)
	}))
	t.Cleanup(api.Close)

	for _, app := range []string{"", "gh-prod"} {
		t.Run("GITHUB_OUTBOUND_APP="+app, func(t *testing.T) {
			addr := freeAddr(t)
			base := "http://" + addr
			endpoint := base + "/mcp"
			p := startNotes(t, childEnv("DESCOPE_CONFIG_URL="+ds.WellKnownURL(), "MCP_SERVER_URL="+base, "ADDR="+addr,
				"GITHUB_OUTBOUND_APP="+app, "GITHUB_API_URL="+api.URL+"/api/v3"))
			p.waitPort(t, addr)
			token := ds.Mint(map[string]any{"aud": endpoint, "scope": scopeRead + " " + descope.ScopeOutboundTokenFetch})
			var prm struct {
				Scopes []string `json:"scopes_supported"`
			}
			getJSON(t, base+"/.well-known/oauth-protected-resource/mcp", &prm)
			if app == "" {
				assert.Equal(t, []string{scopeRead, scopeWrite}, prm.Scopes)
				assert.NotContains(t, listTools(t, endpoint, token), "github_profile")
				p.terminate(t)
				return
			}
			assert.Equal(t, []string{scopeRead, scopeWrite, descope.ScopeOutboundTokenFetch}, prm.Scopes)
			assert.Contains(t, listTools(t, endpoint, token), "github_profile")
			text, isErr := rpcTool(t, endpoint, token, "github_profile", nil)
			assert.True(t, isErr)
			assert.Regexp(t, `^This tool needs your gh-prod account\. Connect it at http://\S+, then call this tool again\.$`, text)
			ds.ConnectOutboundApp(descopetest.DefaultUserID, "gh-prod", "read:user")
			text, isErr = rpcTool(t, endpoint, token, "github_profile", nil)
			assert.False(t, isErr, text)
			assert.JSONEq(t, `{"login":"alice-gh","name":"Alice"}`, text)
			p.terminate(t)
		})
	}
}
