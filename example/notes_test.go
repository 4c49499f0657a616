package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// caller signs tokens with a fake Descope and verifies them with a real
// provider, so that tool handlers see exactly the claims the middleware
// would hand them.
type caller struct {
	ds *descopetest.Server
	p  *descope.Provider
}

func newCaller(t *testing.T, u descopetest.User) *caller {
	t.Helper()
	ds := descopetest.NewServer(descopetest.WithUser(u))
	t.Cleanup(ds.Close)
	p, err := descope.New(descope.Config{WellKnownURL: ds.WellKnownURL(), ServerURL: "http://localhost:8080"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return &caller{ds: ds, p: p}
}

// ctx returns a context carrying the verified claims of a token minted with
// claims.
func (c *caller) ctx(t *testing.T, claims map[string]any) context.Context {
	t.Helper()
	if claims["aud"] == nil {
		claims["aud"] = c.p.ProtectedResource().URL
	}
	verified, err := c.p.VerifyToken(context.Background(), c.ds.Mint(claims))
	require.NoError(t, err)
	return auth.WithClaims(context.Background(), verified)
}

func call(t *testing.T, h func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error), ctx context.Context, args map[string]any) (text string, isError bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Arguments = args
	res, err := h(ctx, req)
	require.NoError(t, err)
	return resultText(t, res), res.IsError
}

func TestWhoamiShape(t *testing.T) {
	c := newCaller(t, descopetest.User{
		Subject:       "U2alice",
		Roles:         []string{"editor"},
		Permissions:   []string{"notes.export"},
		Tenants:       map[string]descopetest.Tenant{"T1": {Roles: []string{"admin"}, Permissions: []string{"billing"}}},
		CurrentTenant: "T1",
	})
	text, isErr := call(t, whoami, c.ctx(t, map[string]any{"scope": "notes:read notes:write", "azp": "client-1"}), nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{
		"sub": "U2alice",
		"client_id": "client-1",
		"scopes": ["notes:read", "notes:write"],
		"roles": ["editor"],
		"permissions": ["notes.export"],
		"tenants": {"T1": {"roles": ["admin"], "permissions": ["billing"]}},
		"current_tenant": "T1"
	}`, text)

	// Every key is there, with empty values, for a token with no extras.
	bare := newCaller(t, descopetest.User{Subject: "U2bare"})
	text, isErr = call(t, whoami, bare.ctx(t, map[string]any{}), nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"sub":"U2bare","client_id":"descopetest-client","scopes":[],"roles":[],"permissions":[],"tenants":{},"current_tenant":""}`, text)

	// A DPoP-bound token shows its key.
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	text, isErr = call(t, whoami, bare.ctx(t, map[string]any{"cnf": map[string]any{"jkt": jkt}}), nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"sub":"U2bare","client_id":"descopetest-client","scopes":[],"roles":[],"permissions":[],"tenants":{},"current_tenant":"","dpop_jkt":"`+jkt+`"}`, text)
}

func TestToolsRefuseUnauthenticatedContext(t *testing.T) {
	st := newStore()
	for name, h := range map[string]func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error){
		"whoami": whoami, "write_note": st.writeNote, "list_notes": st.listNotes,
		"notes_stats": st.notesStats, "tenant_report": st.tenantReport,
	} {
		text, isErr := call(t, h, context.Background(), map[string]any{"text": "x"})
		assert.True(t, isErr, name)
		assert.Equal(t, msgNotSignedIn, text, name)
	}
	assert.Empty(t, st.notes)
}

func TestWriteNoteInput(t *testing.T) {
	c := newCaller(t, descopetest.User{Subject: "U2alice"})
	st := newStore()
	writer := c.ctx(t, map[string]any{"scope": "notes:read notes:write"})

	for _, bad := range []map[string]any{nil, {"text": ""}, {"text": 42}, {"text": strings.Repeat("x", maxNoteBytes+1)}, {"text": "\xff"}} {
		_, isErr := call(t, st.writeNote, writer, bad)
		assert.True(t, isErr, "%v", bad)
	}
	assert.Empty(t, st.list("U2alice"), "nothing refused is stored")

	text, isErr := call(t, st.writeNote, writer, map[string]any{"text": "hi"})
	require.False(t, isErr, text)
	text, isErr = call(t, st.listNotes, writer, nil)
	require.False(t, isErr)
	assert.Contains(t, text, `"text":"hi"`)
}

// serverCall sends one tools/call straight to an MCP server built by
// newMCPServer, with no HTTP middleware in front: the policy's handler
// wrapper is then the only check.
func serverCall(t *testing.T, ctx context.Context, st *store, name string, args map[string]any) (string, bool) {
	t.Helper()
	s := newMCPServer(st, newPolicy())
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": name, "arguments": args}})
	require.NoError(t, err)
	out, err := json.Marshal(s.HandleMessage(ctx, req))
	require.NoError(t, err)
	var reply struct {
		Result *mcp.CallToolResult `json:"result"`
		Error  *struct{ Message string }
	}
	require.NoError(t, json.Unmarshal(out, &reply), string(out))
	require.Nil(t, reply.Error, string(out))
	require.NotNil(t, reply.Result, string(out))
	return resultText(t, reply.Result), reply.Result.IsError
}

// Without the middleware's 403, the policy still keeps callers out of
// write_note.
func TestPolicyGuardsWriteNote(t *testing.T) {
	c := newCaller(t, descopetest.User{Subject: "U2alice"})
	st := newStore()
	text, isErr := serverCall(t, c.ctx(t, map[string]any{"scope": "notes:read"}), st, "write_note", map[string]any{"text": "hi"})
	assert.True(t, isErr)
	assert.NotEmpty(t, text)
	assert.Empty(t, st.list("U2alice"), "the handler did not run")

	text, isErr = serverCall(t, c.ctx(t, map[string]any{"scope": "notes:write"}), st, "write_note", map[string]any{"text": "hi"})
	require.False(t, isErr, text)
	assert.Equal(t, "saved", text)
}

func TestStats(t *testing.T) {
	st := newStore()
	assert.Equal(t, stats{}, st.stats())
	require.NoError(t, st.add("alice", "secret a1"))
	require.NoError(t, st.add("alice", "secret a2"))
	require.NoError(t, st.add("bob", "secret b1"))
	assert.Equal(t, stats{Users: 2, Notes: 3}, st.stats())

	admin := newCaller(t, descopetest.User{Subject: "U2admin", Roles: []string{roleAdmin}})
	text, isErr := serverCall(t, admin.ctx(t, map[string]any{}), st, "notes_stats", nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"users":2,"notes":3}`, text)
}

func TestTenantReport(t *testing.T) {
	st := newStore()
	require.NoError(t, st.add("U2alice", "x"))
	c := newCaller(t, descopetest.User{Subject: "U2alice", CurrentTenant: "T1",
		Tenants: map[string]descopetest.Tenant{"T1": {Permissions: []string{permReportsRead}}}})
	text, isErr := serverCall(t, c.ctx(t, map[string]any{}), st, "tenant_report", nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"tenant":"T1","your_notes":1}`, text)
}

// The dev user may use tenant_report but not notes_stats.
func TestDevUserAuthorization(t *testing.T) {
	ctx := newCaller(t, devUser).ctx(t, map[string]any{"scope": scopeRead})
	d, ok := descope.ClaimsFromContext(ctx)
	require.True(t, ok)
	assert.True(t, d.HasTenantPermissions("", permReportsRead))
	assert.False(t, d.HasRoles(roleAdmin))
}

func TestStoreKeepsUsersApart(t *testing.T) {
	st := newStore()
	require.NoError(t, st.add("alice", "a1"))
	require.NoError(t, st.add("bob", "b1"))
	require.NoError(t, st.add("alice", "a2"))

	texts := func(sub string) []string {
		var out []string
		for _, n := range st.list(sub) {
			out = append(out, n.Text)
		}
		return out
	}
	assert.Equal(t, []string{"a1", "a2"}, texts("alice"))
	assert.Equal(t, []string{"b1"}, texts("bob"))
	assert.NotNil(t, st.list("carol"))
	assert.Empty(t, st.list("carol"))

	// A caller cannot change the store through the list it got.
	l := st.list("alice")
	l[0].Text = "changed"
	assert.Equal(t, []string{"a1", "a2"}, texts("alice"))
}

func TestStoreLimitAndConcurrency(t *testing.T) {
	st := newStore()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range maxNotesPerUser {
				_ = st.add("alice", "x")
				_ = st.list("alice")
			}
		})
	}
	wg.Wait()
	assert.Len(t, st.list("alice"), maxNotesPerUser)
	assert.Error(t, st.add("alice", "one too many"))
	assert.NoError(t, st.add("bob", "others are not affected"))
}

// The handlers are wired to the names clients call.
func TestServerListsTools(t *testing.T) {
	s := newMCPServer(newStore(), newPolicy())
	var names []string
	for name := range s.ListTools() {
		names = append(names, name)
	}
	assert.ElementsMatch(t, []string{"whoami", "write_note", "list_notes", "notes_stats", "tenant_report"}, names)
}

// tools/list shows each tool's true annotations, all four hints set, so
// that clients neither badge read-only tools as destructive nor warn that
// they reach the outside world.
func TestToolAnnotations(t *testing.T) {
	c := newCaller(t, descopetest.User{
		Subject:       "U2admin",
		Roles:         []string{roleAdmin},
		Tenants:       map[string]descopetest.Tenant{"T1": {Permissions: []string{permReportsRead}}},
		CurrentTenant: "T1",
	})
	s := newMCPServer(newStore(), newPolicy())
	out, err := json.Marshal(s.HandleMessage(c.ctx(t, map[string]any{"scope": scopeRead}),
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)))
	require.NoError(t, err)
	var reply struct {
		Result struct {
			Tools []struct {
				Name        string          `json:"name"`
				Annotations map[string]bool `json:"annotations"`
			} `json:"tools"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(out, &reply), string(out))

	readOnly := map[string]bool{"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
	want := map[string]map[string]bool{
		"whoami":        readOnly,
		"list_notes":    readOnly,
		"notes_stats":   readOnly,
		"tenant_report": readOnly,
		// Each call adds a note; none changes or removes one.
		"write_note": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false},
	}
	got := map[string]map[string]bool{}
	for _, tool := range reply.Result.Tools {
		got[tool.Name] = tool.Annotations
	}
	assert.Equal(t, want, got, string(out))
}
