package descope_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// policyFixture is a notes-like server whose tools declare what they need.
type policyFixture struct {
	ds   *descopetest.Server
	srv  *httptest.Server
	runs map[string]*atomic.Int64
}

func newPolicyFixture(t *testing.T) *policyFixture {
	t.Helper()
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL(), RequiredScopes: []string{"notes:read"}})
	pol := auth.NewPolicy(auth.WithScopeHierarchy(map[string][]string{
		"notes:admin": {"notes:write"},
		"notes:write": {"notes:read"},
	}))
	s := server.NewMCPServer("notes", "1.0.0", pol.ServerOptions()...)
	f := &policyFixture{ds: ds, runs: map[string]*atomic.Int64{}}
	add := func(name string, reqs ...auth.Requirement) {
		n := &atomic.Int64{}
		f.runs[name] = n
		pol.AddTool(s, mcp.NewTool(name), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.Add(1)
			return mcp.NewToolResultText(name + " ran"), nil
		}, reqs...)
	}
	add("list_notes")
	add("write_note", auth.RequireScopes("notes:write"))
	add("export_notes", auth.RequireScopes("notes:write", "notes:export", "offline_access"))
	add("delete_project", descope.RequireRoles("admin"))
	add("billing", descope.RequireTenantPermissions("", "billing.read"))
	f.srv = httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s), auth.WithPolicy(pol)))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *policyFixture) token(scope string, user descopetest.User) string {
	f.ds.SetUser(user)
	return f.ds.Mint(map[string]any{"aud": resourceURL, "scope": scope})
}

// modernCall sends one sessionless (2026-07-28) JSON-RPC request.
func modernCall(t *testing.T, url, token, method, name string, params map[string]any) (*http.Response, string) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if name != "" {
		params["name"] = name
	}
	params["_meta"] = map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if name != "" {
		req.Header.Set("Mcp-Name", name)
	} else if uri, ok := params["uri"].(string); ok {
		req.Header.Set("Mcp-Name", uri)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func toolText(t *testing.T, body string) (string, bool) {
	t.Helper()
	var msg struct {
		Result struct {
			Content []struct{ Text string } `json:"content"`
			IsError bool                    `json:"isError"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &msg), body)
	require.NotEmpty(t, msg.Result.Content, body)
	return msg.Result.Content[0].Text, msg.Result.IsError
}

func TestToolScopesAtTheTransport(t *testing.T) {
	f := newPolicyFixture(t)
	plain := descopetest.User{Subject: "U2plain"}
	scope := func(s string) string {
		return `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="` + s + `", resource_metadata="` + metadataURL + `"`
	}
	tests := []struct {
		name      string
		tool      string
		scopes    string
		status    int
		challenge string
		ran       bool
	}{
		{"tool without scopes", "list_notes", "notes:read", 200, "", true},
		{"missing tool scope", "write_note", "notes:read", 403, scope("notes:read notes:write"), false},
		{"tool scope held", "write_note", "notes:read notes:write", 200, "", true},
		{"broader scope implies it", "write_note", "notes:admin", 200, "", true},
		{"every scope in one challenge, never offline_access", "export_notes", "notes:read", 403, scope("notes:read notes:write notes:export"), false},
		{"partly held still challenges for all", "export_notes", "notes:write", 403, scope("notes:read notes:write notes:export"), false},
		{"endpoint scope through hierarchy", "list_notes", "notes:write", 200, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.runs[tc.tool].Load()
			resp, body := modernCall(t, f.srv.URL+"/mcp", f.token(tc.scopes, plain), "tools/call", tc.tool, nil)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
			ran := f.runs[tc.tool].Load() > before
			assert.Equal(t, tc.ran, ran)
			if tc.ran {
				text, isErr := toolText(t, body)
				assert.False(t, isErr)
				assert.Equal(t, tc.tool+" ran", text)
			}
		})
	}
}

func TestBatchesAreRefused(t *testing.T) {
	f := newPolicyFixture(t)
	body := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_notes"}},` +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_note"}}]`
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.token("notes:read", descopetest.User{Subject: "U2plain"}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// MCP has no batches since 2025-06-18: refused whole, nothing runs.
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Batches are not accepted: send one JSON-RPC message per request."}}`, string(out))
	assert.Zero(t, f.runs["list_notes"].Load())
	assert.Zero(t, f.runs["write_note"].Load())
}

func TestRolesPermissionsAndTenants(t *testing.T) {
	f := newPolicyFixture(t)
	tests := []struct {
		name string
		tool string
		user descopetest.User
		ran  bool
	}{
		{"admin role", "delete_project", descopetest.User{Subject: "U2a", Roles: []string{"admin"}}, true},
		{"no role", "delete_project", descopetest.User{Subject: "U2b", Roles: []string{"editor"}}, false},
		{"admin only in a tenant", "delete_project", descopetest.User{Subject: "U2c", Tenants: map[string]descopetest.Tenant{"T1": {Roles: []string{"admin"}}}}, false},
		{"permission in current tenant", "billing", descopetest.User{Subject: "U2d", CurrentTenant: "T1",
			Tenants: map[string]descopetest.Tenant{"T1": {Permissions: []string{"billing.read"}}}}, true},
		{"permission in another tenant only", "billing", descopetest.User{Subject: "U2e", CurrentTenant: "T1",
			Tenants: map[string]descopetest.Tenant{"T1": {}, "T2": {Permissions: []string{"billing.read"}}}}, false},
		{"dct fallback to project-wide without tenants claim", "billing", descopetest.User{Subject: "U2f", CurrentTenant: "T1", Permissions: []string{"billing.read"}}, true},
		{"project-wide permission does not count with a tenants claim", "billing", descopetest.User{Subject: "U2g", CurrentTenant: "T1", Permissions: []string{"billing.read"},
			Tenants: map[string]descopetest.Tenant{"T1": {Roles: []string{"member"}}}}, false},
		{"user outside the tenant", "billing", descopetest.User{Subject: "U2h", CurrentTenant: "T9",
			Tenants: map[string]descopetest.Tenant{"T1": {Permissions: []string{"billing.read"}}}}, false},
		{"no current tenant", "billing", descopetest.User{Subject: "U2i", Permissions: []string{"billing.read"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.runs[tc.tool].Load()
			resp, body := modernCall(t, f.srv.URL+"/mcp", f.token("notes:read", tc.user), "tools/call", tc.tool, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			text, isErr := toolText(t, body)
			assert.Equal(t, tc.ran, f.runs[tc.tool].Load() > before)
			if tc.ran {
				assert.False(t, isErr)
			} else {
				assert.True(t, isErr)
				assert.Equal(t, auth.DeniedMessage, text)
			}
		})
	}
}

func TestToolsListDiffersByCaller(t *testing.T) {
	f := newPolicyFixture(t)
	list := func(user descopetest.User) []string {
		resp, body := modernCall(t, f.srv.URL+"/mcp", f.token("notes:read", user), "tools/list", "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		var msg struct {
			Result struct{ Tools []struct{ Name string } } `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &msg))
		var names []string
		for _, tl := range msg.Result.Tools {
			names = append(names, tl.Name)
		}
		return names
	}
	// Tools whose only shortfall is a scope stay listed: step-up can
	// fix that. Rules cannot, so those tools are hidden.
	assert.ElementsMatch(t, []string{"list_notes", "write_note", "export_notes"}, list(descopetest.User{Subject: "U2plain"}))
	assert.ElementsMatch(t, []string{"list_notes", "write_note", "export_notes", "delete_project"}, list(descopetest.User{Subject: "U2admin", Roles: []string{"admin"}}))
}

func TestScopeHierarchy(t *testing.T) {
	pol := auth.NewPolicy(auth.WithScopeHierarchy(map[string][]string{
		"admin":       {"notes:admin", "billing"},
		"notes:admin": {"notes:write"},
		"notes:write": {"notes:read"},
		"loop:a":      {"loop:b"},
		"loop:b":      {"loop:a"},
	}))
	tests := []struct {
		held  []string
		scope string
		want  bool
	}{
		{[]string{"notes:read"}, "notes:read", true},
		{[]string{"notes:read"}, "notes:write", false},
		{[]string{"notes:write"}, "notes:read", true},
		{[]string{"notes:admin"}, "notes:read", true},
		{[]string{"admin"}, "notes:read", true},
		{[]string{"admin"}, "billing", true},
		{[]string{"billing"}, "admin", false},
		{[]string{"notes:admin"}, "billing", false},
		{[]string{"loop:a"}, "loop:b", true},
		{[]string{"loop:b"}, "loop:a", true},
		{[]string{"loop:a"}, "notes:read", false},
		{nil, "notes:read", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.held, "→", tc.scope), func(t *testing.T) {
			assert.Equal(t, tc.want, pol.Grants(&auth.Claims{Scopes: tc.held}, tc.scope))
		})
	}
	assert.False(t, pol.Grants(nil, "notes:read"))
}

// legacySession opens a 2025-11-25 session and returns its ID.
func legacySession(t *testing.T, url, token string) string {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	resp, out := legacyPost(t, url, token, "", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	id := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, id)
	return id
}

func legacyPost(t *testing.T, url, token, session, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const legacyList = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

func TestSessionsAreBoundToTheirCaller(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	serve := func(secret []byte) string {
		s := server.NewMCPServer("notes", "1.0.0")
		srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s, auth.SessionBinding(secret))))
		t.Cleanup(srv.Close)
		return srv.URL + "/mcp"
	}
	alice := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice"})
	bob := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob"})

	one := serve([]byte("shared secret of the replicas...."))
	session := legacySession(t, one, alice)

	resp, _ := legacyPost(t, one, bob, session, legacyList)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "bob cannot ride alice's session")
	resp, body := legacyPost(t, one, alice, session, legacyList)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)

	replica := serve([]byte("shared secret of the replicas...."))
	resp, body = legacyPost(t, replica, alice, session, legacyList)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a replica with the same secret accepts it: %s", body)
	resp, _ = legacyPost(t, replica, bob, session, legacyList)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	stranger := serve([]byte("another secret"))
	resp, _ = legacyPost(t, stranger, alice, session, legacyList)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a server with another secret does not")

	// Bob cannot end alice's session either.
	req, _ := http.NewRequest(http.MethodDelete, one, nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	dresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	dresp.Body.Close()
	assert.NotEqual(t, http.StatusOK, dresp.StatusCode)
	resp, _ = legacyPost(t, one, alice, session, legacyList)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// slowServer has a tool that runs until it is cancelled or a second passes.
func slowServer(cancelled *atomic.Int64) *server.MCPServer {
	s := server.NewMCPServer("slow", "1.0.0")
	s.AddTool(mcp.NewTool("slow"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		select {
		case <-ctx.Done():
			cancelled.Add(1)
			return nil, ctx.Err()
		case <-time.After(time.Second):
			return mcp.NewToolResultText("done"), nil
		}
	})
	return s
}

// cancelOthers starts alice's slow call and has bob send
// notifications/cancelled for the same request ID; it reports whether
// alice's call was cancelled and bob's status.
func cancelOthers(t *testing.T, handler func(*server.MCPServer) http.Handler, alice, bob string) (bool, int) {
	t.Helper()
	return cancelOthersWith(t, handler, alice, bob, "")
}

// cancelOthersWith is cancelOthers with idMember (say `"id":null,`) in
// bob's notification.
func cancelOthersWith(t *testing.T, handler func(*server.MCPServer) http.Handler, alice, bob, idMember string) (bool, int) {
	t.Helper()
	var cancelled atomic.Int64
	srv := httptest.NewServer(handler(slowServer(&cancelled)))
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		modernCall(t, srv.URL+"/mcp", alice, "tools/call", "slow", nil)
	}()
	// Bob keeps sending the cancellation until alice's call ends.
	status := 0
	deadline := time.After(3 * time.Second)
	for {
		select {
		case <-done:
			return cancelled.Load() > 0, status
		case <-deadline:
			t.Fatal("alice's call did not end")
		default:
		}
		body := `{"jsonrpc":"2.0",` + idMember + `"method":"notifications/cancelled","params":{"requestId":1,"reason":"bob says so",` +
			`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "notifications/cancelled")
		if bob != "" {
			req.Header.Set("Authorization", "Bearer "+bob)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		status = resp.StatusCode
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOneCallerCannotCancelAnothersCall(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	alice := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice"})
	bob := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob"})

	t.Run("plain mcp-go", func(t *testing.T) {
		cancelled, status := cancelOthers(t, func(s *server.MCPServer) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/mcp", server.NewStreamableHTTPServer(s))
			return mux
		}, alice, "")
		assert.Equal(t, http.StatusAccepted, status)
		assert.True(t, cancelled, "without the library, anyone can cancel alice's call")
	})
	t.Run("behind the library", func(t *testing.T) {
		cancelled, status := cancelOthers(t, func(s *server.MCPServer) http.Handler {
			return auth.Handler(p, server.NewStreamableHTTPServer(s))
		}, alice, bob)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.False(t, cancelled, "bob's cancellation is refused")
	})
}

func TestPromptsAndResourcesFollowThePolicy(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	pol := auth.NewPolicy()
	s := server.NewMCPServer("notes", "1.0.0", append(pol.ServerOptions(), server.WithResourceCapabilities(true, true))...)
	pol.AddPrompt(s, mcp.NewPrompt("admin_prompt"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("admin", nil), nil
	}, descope.RequireRoles("admin"))
	pol.AddPrompt(s, mcp.NewPrompt("open_prompt"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("open", nil), nil
	})
	read := func(uri string) server.ResourceHandlerFunc {
		return func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, Text: "secret"}}, nil
		}
	}
	pol.AddResource(s, mcp.NewResource("notes://audit", "audit"), read("notes://audit"), descope.RequireRoles("admin"))
	pol.AddResource(s, mcp.NewResource("notes://mine", "mine"), read("notes://mine"), auth.RequireScopes("notes:read"))
	srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s), auth.WithPolicy(pol)))
	t.Cleanup(srv.Close)
	url := srv.URL + "/mcp"
	admin := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2admin", "roles": []string{"admin"}, "scope": "notes:read"})
	plain := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2plain", "roles": nil, "scope": ""})

	// prompts/list hides what rules deny.
	_, body := modernCall(t, url, plain, "prompts/list", "", nil)
	assert.Contains(t, body, "open_prompt")
	assert.NotContains(t, body, "admin_prompt")
	_, body = modernCall(t, url, admin, "prompts/list", "", nil)
	assert.Contains(t, body, "admin_prompt")

	// resources/read: rules give an error, scopes a step-up challenge.
	resp, body := modernCall(t, url, plain, "resources/read", "", map[string]any{"uri": "notes://audit"})
	assert.NotContains(t, body, "secret", "status %d", resp.StatusCode)
	assert.Contains(t, body, `"error"`)
	assert.Contains(t, body, "access denied")
	resp, body = modernCall(t, url, admin, "resources/read", "", map[string]any{"uri": "notes://audit"})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "secret")
	resp, _ = modernCall(t, url, plain, "resources/read", "", map[string]any{"uri": "notes://mine"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `scope="notes:read"`)

	// A subscription stream may only name resources the caller may read.
	listen := func(token, uri string) *http.Response {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		params := map[string]any{"notifications": map[string]any{"resourceSubscriptions": []string{uri}},
			"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{}}}
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen", "params": params})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "subscriptions/listen")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close() // the stream stays open otherwise
		return resp
	}
	assert.Equal(t, http.StatusForbidden, listen(plain, "notes://audit").StatusCode)
	denied := listen(plain, "notes://mine")
	assert.Equal(t, http.StatusForbidden, denied.StatusCode)
	assert.Contains(t, denied.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`)
	assert.Equal(t, http.StatusOK, listen(admin, "notes://audit").StatusCode)
}
