package descope_test

// These tests hold the Policy to its promise: one decision per tool, prompt,
// resource and resource template, honoured by every MCP method that names or
// lists the item, in both protocol itemEras. Alice passes every requirement; Bob
// holds notes:read only and no role. Bob must get nothing of what he may not
// use, and Alice must lose nothing.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

const (
	itemsLegacy = "2025-11-25"
	itemsModern = "2026-07-28"
)

// itemsServer is a notes server whose tools, prompts and resources carry
// requirements, with completion providers and an app hook that records
// legacy subscriptions, the way an app that sends resource updates would.
type itemsServer struct {
	mcp         *server.MCPServer
	url         string
	alice, bob  string // tokens
	completions atomic.Int64
	appHooks    atomic.Int64 // runs of the app's own list hook

	mu   sync.Mutex
	subs map[string][]string // session ID -> URIs the app recorded
}

// itemsConfig varies how the fixture builds its server.
type itemsConfig struct {
	hooksFirst bool // pass the app's WithHooks before pol.ServerOptions()
	extra      []server.ServerOption
}

func newItemsServer(t *testing.T, cfg itemsConfig) *itemsServer {
	t.Helper()
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	f := &itemsServer{subs: map[string][]string{}}

	hooks := &server.Hooks{}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		f.mu.Lock()
		defer f.mu.Unlock()
		id := server.ClientSessionFromContext(ctx).SessionID()
		f.subs[id] = append(f.subs[id], req.Params.URI)
	})
	hooks.AddAfterListResources(func(context.Context, any, *mcp.ListResourcesRequest, *mcp.ListResourcesResult) {
		f.appHooks.Add(1)
	})

	pol := auth.NewPolicy()
	opts := []server.ServerOption{
		server.WithResourceCapabilities(true, true),
		server.WithCompletions(),
		server.WithCacheHints(60000, mcp.CacheScopePublic),
		server.WithPromptCompletionProvider(promptCompleter{&f.completions}),
		server.WithResourceCompletionProvider(resourceCompleter{&f.completions}),
	}
	if cfg.hooksFirst {
		opts = append(append(opts, server.WithHooks(hooks)), pol.ServerOptions()...)
	} else {
		opts = append(append(opts, pol.ServerOptions()...), server.WithHooks(hooks))
	}
	s := server.NewMCPServer("notes", "1.0.0", append(opts, cfg.extra...)...)
	f.mcp = s

	tool := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ran"), nil
	}
	pol.AddTool(s, mcp.NewTool("list_notes"), tool)
	pol.AddTool(s, mcp.NewTool("delete_project"), tool, descope.RequireRoles("admin"))
	prompt := func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("secret prompt", nil), nil
	}
	pol.AddPrompt(s, mcp.NewPrompt("open_prompt"), prompt)
	pol.AddPrompt(s, mcp.NewPrompt("admin_prompt"), prompt, descope.RequireRoles("admin"))
	pol.AddPrompt(s, mcp.NewPrompt("draft_prompt"), prompt, auth.RequireScopes("notes:write"))
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "secret contents"}}, nil
	}
	pol.AddResource(s, mcp.NewResource("notes://open", "open"), read)
	pol.AddResource(s, mcp.NewResource("notes://audit", "audit"), read, descope.RequireRoles("admin"))
	pol.AddResource(s, mcp.NewResource("notes://mine", "mine"), read, auth.RequireScopes("notes:write"))
	pol.AddResourceTemplate(s, mcp.NewResourceTemplate("notes://open/{id}", "open-notes"), read)
	pol.AddResourceTemplate(s, mcp.NewResourceTemplate("notes://admin/{id}", "admin-notes"), read, descope.RequireRoles("admin"))
	pol.AddResourceTemplate(s, mcp.NewResourceTemplate("notes://drafts/{id}", "drafts"), read, auth.RequireScopes("notes:write"))

	srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s, auth.SessionBinding([]byte("items test secret......"))), auth.WithPolicy(pol)))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/mcp"
	f.alice = ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice", "roles": []string{"admin"}, "scope": "notes:read notes:write"})
	f.bob = ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob", "roles": nil, "scope": "notes:read"})
	return f
}

// recorded returns the URIs the app recorded for a session's subscriptions.
func (f *itemsServer) recorded(session string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.subs[session])
}

// sendUpdates does what an app does when resources change: it tells every
// session it recorded as subscribed.
func (f *itemsServer) sendUpdates(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for session, uris := range f.subs {
		for _, uri := range uris {
			require.NoError(t, f.mcp.SendNotificationToSpecificClient(session, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri}))
		}
	}
}

type promptCompleter struct{ runs *atomic.Int64 }

func (c promptCompleter) CompletePromptArgument(_ context.Context, name string, _ mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	c.runs.Add(1)
	return &mcp.Completion{Values: []string{name + "-secret"}}, nil
}

type resourceCompleter struct{ runs *atomic.Int64 }

func (c resourceCompleter) CompleteResourceArgument(_ context.Context, uri string, _ mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	c.runs.Add(1)
	return &mcp.Completion{Values: []string{uri + "-secret"}}, nil
}

// itemCaller speaks to the server as one user in one protocol era.
type itemCaller struct {
	url, token string
	modern     bool
	session    string // legacy only
	ids        *atomic.Int64
}

// itemEras lists both protocol itemEras, for tests that run in each.
var itemEras = []struct {
	name   string
	modern bool
}{{"2025-11-25", false}, {"2026-07-28", true}}

// itemCallerFor opens a caller; a legacy caller first opens its own session.
func itemCallerFor(t *testing.T, url, token string, modern bool) itemCaller {
	t.Helper()
	c := itemCaller{url: url, token: token, modern: modern, ids: &atomic.Int64{}}
	if modern {
		return c
	}
	resp, reply := c.rpc(t, "initialize", map[string]any{"protocolVersion": itemsLegacy, "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "t", "version": "1"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
	c.session = resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, c.session)
	return c
}

// itemReply is a JSON-RPC response.
type itemReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

func (c itemCaller) rpc(t *testing.T, method string, params map[string]any) (*http.Response, itemReply) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if c.modern {
		params["_meta"] = map[string]any{"io.modelcontextprotocol/protocolVersion": itemsModern, "io.modelcontextprotocol/clientCapabilities": map[string]any{}}
	}
	rawParams, err := json.Marshal(params)
	require.NoError(t, err)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.ids.Add(1), "method": method, "params": json.RawMessage(rawParams)})
	require.NoError(t, err)
	return c.post(t, method, rawParams, body)
}

// post sends body, a JSON-RPC request for method with params.
func (c itemCaller) post(t *testing.T, method string, rawParams, body []byte) (*http.Response, itemReply) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.modern {
		req.Header.Set("MCP-Protocol-Version", itemsModern)
		for k, v := range mcp.StandardHeaders(itemsModern, mcp.MCPMethod(method), rawParams) {
			req.Header.Set(k, v)
		}
	} else if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("MCP-Protocol-Version", itemsLegacy)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	reply := itemReply{raw: string(b)}
	payload := b
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		payload = lastEventData(b)
	}
	if strings.Contains(string(payload), `"jsonrpc"`) {
		require.NoError(t, json.Unmarshal(payload, &reply), string(b))
	}
	return resp, reply
}

// lastEventData returns the data of the last event of an SSE body.
func lastEventData(b []byte) []byte {
	var data []byte
	for line := range strings.Lines(string(b)) {
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: "); ok {
			data = []byte(d)
		}
	}
	return data
}

// listed lists the value of member key of each element of result[list].
func listed(t *testing.T, r itemReply, list, key string) []string {
	t.Helper()
	require.Nil(t, r.Error, r.raw)
	var res map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.Result, &res), r.raw)
	var items []map[string]any
	require.NoError(t, json.Unmarshal(res[list], &items), r.raw)
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprint(it[key]))
	}
	return out
}

func TestResourcesListHidesWhatRulesDeny(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			tests := []struct {
				user  string
				token string
				want  []string
			}{
				// A scope alone does not hide: step-up can fix it.
				{"alice", f.alice, []string{"notes://audit", "notes://mine", "notes://open"}},
				{"bob", f.bob, []string{"notes://mine", "notes://open"}},
			}
			for _, tc := range tests {
				t.Run(tc.user, func(t *testing.T) {
					resp, reply := itemCallerFor(t, f.url, tc.token, era.modern).rpc(t, "resources/list", nil)
					require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
					assert.ElementsMatch(t, tc.want, listed(t, reply, "resources", "uri"))
				})
			}
		})
	}
}

// With pagination, mcp-go cuts pages before the Policy sees them and names
// the next page by the last name on the page: that name must never be a
// hidden resource's.
func TestResourcesListPagesNameNoHiddenResource(t *testing.T) {
	f := newItemsServer(t, itemsConfig{extra: []server.ServerOption{server.WithPaginationLimit(1)}})
	walk := func(t *testing.T, c itemCaller, hidden string) ([]string, []string) {
		t.Helper()
		var uris, cursors []string
		params := map[string]any{}
		for range 10 {
			resp, reply := c.rpc(t, "resources/list", params)
			require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
			if hidden != "" {
				assert.NotContains(t, reply.raw, hidden)
			}
			uris = append(uris, listed(t, reply, "resources", "uri")...)
			var page struct{ NextCursor string }
			require.NoError(t, json.Unmarshal(reply.Result, &page))
			if page.NextCursor == "" {
				return uris, cursors
			}
			cursors = append(cursors, page.NextCursor)
			params = map[string]any{"cursor": page.NextCursor}
		}
		t.Fatal("pagination did not end")
		return nil, nil
	}
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			uris, cursors := walk(t, itemCallerFor(t, f.url, f.bob, era.modern), "audit")
			assert.ElementsMatch(t, []string{"notes://mine", "notes://open"}, uris)
			for _, c := range cursors {
				decoded, _ := base64.StdEncoding.DecodeString(c)
				assert.NotEqual(t, "audit", string(decoded), "a cursor names the hidden resource")
			}
			uris, _ = walk(t, itemCallerFor(t, f.url, f.alice, era.modern), "")
			assert.ElementsMatch(t, []string{"notes://audit", "notes://mine", "notes://open"}, uris)
		})
	}
}

func TestCompletionsFollowThePolicy(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	promptRef := func(name string) map[string]any {
		return map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": name}, "argument": map[string]any{"name": "a", "value": ""}}
	}
	resourceRef := func(uri string) map[string]any {
		return map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": uri}, "argument": map[string]any{"name": "a", "value": ""}}
	}
	promptUnknown := func(name string) string { return "prompt '" + name + "' not found: prompt not found" }
	resourceUnknown := func(uri string) string {
		return "handler not found for resource URI '" + uri + "': resource not found"
	}
	tests := []struct {
		name      string
		user      string
		params    map[string]any
		values    []string // nil: refused with errMsg, or challenged
		errMsg    string
		challenge string // a 403 step-up challenge at the transport
	}{
		{"visible prompt", "bob", promptRef("open_prompt"), []string{"open_prompt-secret"}, "", ""},
		{"hidden prompt", "bob", promptRef("admin_prompt"), nil, promptUnknown("admin_prompt"), ""},
		{"hidden prompt looks like an unknown one", "bob", promptRef("no_such_prompt"), nil, promptUnknown("no_such_prompt"), ""},
		{"prompt the caller may use", "alice", promptRef("admin_prompt"), []string{"admin_prompt-secret"}, "", ""},
		{"prompt scope missing", "bob", promptRef("draft_prompt"), nil, "", scopeChallenge("notes:write")},
		{"prompt scope held", "alice", promptRef("draft_prompt"), []string{"draft_prompt-secret"}, "", ""},
		{"visible resource", "bob", resourceRef("notes://open"), []string{"notes://open-secret"}, "", ""},
		{"hidden resource", "bob", resourceRef("notes://audit"), nil, resourceUnknown("notes://audit"), ""},
		{"resource the caller may read", "alice", resourceRef("notes://audit"), []string{"notes://audit-secret"}, "", ""},
		{"resource scope missing", "bob", resourceRef("notes://mine"), nil, "", scopeChallenge("notes:write")},
	}
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			callers := map[string]itemCaller{"alice": itemCallerFor(t, f.url, f.alice, era.modern), "bob": itemCallerFor(t, f.url, f.bob, era.modern)}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					before := f.completions.Load()
					resp, reply := callers[tc.user].rpc(t, "completion/complete", tc.params)
					assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
					if tc.challenge != "" {
						assert.Equal(t, http.StatusForbidden, resp.StatusCode, reply.raw)
						assert.Equal(t, before, f.completions.Load(), "the app's completion provider ran")
						return
					}
					if tc.values != nil {
						require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
						require.Nil(t, reply.Error, reply.raw)
						var res struct{ Completion struct{ Values []string } }
						require.NoError(t, json.Unmarshal(reply.Result, &res))
						assert.Equal(t, tc.values, res.Completion.Values)
						return
					}
					// 2026-07-28 maps -32600 to 400, as it does mcp-go's
					// own "not found" (-32602).
					assert.Equal(t, map[bool]int{false: http.StatusOK, true: http.StatusBadRequest}[era.modern], resp.StatusCode)
					require.NotNil(t, reply.Error, reply.raw)
					assert.Equal(t, mcp.INVALID_REQUEST, reply.Error.Code)
					assert.Equal(t, tc.errMsg, reply.Error.Message)
					assert.NotContains(t, reply.raw, "secret")
					assert.Equal(t, before, f.completions.Load(), "the app's completion provider ran")
				})
			}
		})
	}
}

// itemStream is an open legacy GET stream of a session.
type itemStream struct {
	resp   *http.Response
	events chan string // the data of each event
}

func openItemStream(t *testing.T, c itemCaller) *itemStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("MCP-Protocol-Version", itemsLegacy)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	s := &itemStream{resp: resp, events: make(chan string, 16)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.events <- d
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// until reads events until one contains marker and returns those before it.
func (s *itemStream) until(t *testing.T, marker string) []string {
	t.Helper()
	var before []string
	for ev := range s.events {
		if strings.Contains(ev, marker) {
			return before
		}
		before = append(before, ev)
	}
	t.Fatalf("stream ended before %q", marker)
	return nil
}

// Legacy sessions subscribe with resources/subscribe; the app records the
// subscription and sends updates to the sessions it recorded.
func TestLegacySubscribeFollowsThePolicy(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	alice := itemCallerFor(t, f.url, f.alice, false)
	bob := itemCallerFor(t, f.url, f.bob, false)
	aliceStream, bobStream := openItemStream(t, alice), openItemStream(t, bob)
	subscribe := func(c itemCaller, uri string) (*http.Response, itemReply) {
		return c.rpc(t, "resources/subscribe", map[string]any{"uri": uri})
	}

	// Rules: refused like an unknown resource, never recorded.
	resp, reply := subscribe(bob, "notes://audit")
	require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
	if assert.NotNil(t, reply.Error, reply.raw) {
		assert.Equal(t, mcp.INVALID_REQUEST, reply.Error.Code)
		assert.Equal(t, "handler not found for resource URI 'notes://audit': resource not found", reply.Error.Message)
	}

	// Scopes: a step-up challenge at the transport, as for a read.
	resp, reply = subscribe(bob, "notes://mine")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, reply.raw)
	assert.Equal(t, scopeChallenge("notes:write"), resp.Header.Get("WWW-Authenticate"))

	// Bob may still subscribe to what he may read; Alice to everything.
	for _, tc := range []struct {
		c   itemCaller
		uri string
	}{{bob, "notes://open"}, {alice, "notes://audit"}, {alice, "notes://mine"}} {
		resp, reply = subscribe(tc.c, tc.uri)
		require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
		require.Nil(t, reply.Error, reply.raw)
	}
	assert.Equal(t, []string{"notes://open"}, f.recorded(bob.session))
	assert.Equal(t, []string{"notes://audit", "notes://mine"}, f.recorded(alice.session))

	f.sendUpdates(t)
	require.NoError(t, f.mcp.SendNotificationToSpecificClient(bob.session, "notifications/test/end", nil))
	require.NoError(t, f.mcp.SendNotificationToSpecificClient(alice.session, "notifications/test/end", nil))
	bobGot := strings.Join(bobStream.until(t, "notifications/test/end"), "\n")
	assert.Contains(t, bobGot, "notes://open")
	assert.NotContains(t, bobGot, "notes://audit")
	assert.NotContains(t, bobGot, "notes://mine")
	aliceGot := strings.Join(aliceStream.until(t, "notifications/test/end"), "\n")
	assert.Contains(t, aliceGot, "notes://audit")
	assert.Contains(t, aliceGot, "notes://mine")
}

// The spec: caches MUST NOT be shared across authorization contexts. What
// the Policy filters, or gates, differs by caller.
func TestCallerDependentResultsAreNeverPublic(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	type hints struct {
		TTLMs      *int64 `json:"ttlMs"`
		CacheScope string `json:"cacheScope"`
	}
	ttl := func(n int64) *int64 { return &n }
	tests := []struct {
		method string
		params map[string]any
		want   hints
	}{
		{"tools/list", nil, hints{ttl(0), "private"}},
		{"prompts/list", nil, hints{ttl(0), "private"}},
		{"resources/list", nil, hints{ttl(0), "private"}},
		{"resources/templates/list", nil, hints{ttl(0), "private"}},
		{"resources/read", map[string]any{"uri": "notes://audit"}, hints{ttl(0), "private"}},
		{"resources/read", map[string]any{"uri": "notes://mine"}, hints{ttl(0), "private"}},
		{"resources/read", map[string]any{"uri": "notes://admin/7"}, hints{ttl(0), "private"}},
		{"resources/read", map[string]any{"uri": "notes://drafts/7"}, hints{ttl(0), "private"}},
		// What every caller gets alike keeps the server's hints.
		{"resources/read", map[string]any{"uri": "notes://open"}, hints{ttl(60000), "public"}},
		{"resources/read", map[string]any{"uri": "notes://open/7"}, hints{ttl(60000), "public"}},
	}
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			alice := itemCallerFor(t, f.url, f.alice, era.modern)
			for _, tc := range tests {
				t.Run(fmt.Sprint(tc.method, tc.params), func(t *testing.T) {
					resp, reply := alice.rpc(t, tc.method, tc.params)
					require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
					require.Nil(t, reply.Error, reply.raw)
					var got hints
					require.NoError(t, json.Unmarshal(reply.Result, &got))
					if !era.modern {
						// Legacy results carry no caching hints at all.
						assert.Equal(t, hints{}, got)
						return
					}
					assert.Equal(t, tc.want, got)
				})
			}
		})
	}
}

// mcp-go's WithHooks replaces the server's hooks: the Policy's must survive
// an app that passes its own, before or after pol.ServerOptions(), and the
// app's must still run.
func TestPolicyHooksSurviveTheAppsHooks(t *testing.T) {
	for _, first := range []bool{true, false} {
		t.Run(fmt.Sprint("app hooks first: ", first), func(t *testing.T) {
			f := newItemsServer(t, itemsConfig{hooksFirst: first})
			resp, reply := itemCallerFor(t, f.url, f.bob, true).rpc(t, "resources/list", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
			assert.ElementsMatch(t, []string{"notes://mine", "notes://open"}, listed(t, reply, "resources", "uri"))
			assert.Equal(t, int64(1), f.appHooks.Load())
		})
	}
}

// scopeChallenge is the 403 challenge for an operation that needs scope.
func scopeChallenge(scope string) string {
	return `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="` + scope + `", resource_metadata="` + metadataURL + `"`
}

func TestResourceTemplatesFollowThePolicy(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			alice := itemCallerFor(t, f.url, f.alice, era.modern)
			bob := itemCallerFor(t, f.url, f.bob, era.modern)
			callers := map[string]itemCaller{"alice": alice, "bob": bob}

			t.Run("list", func(t *testing.T) {
				_, reply := alice.rpc(t, "resources/templates/list", nil)
				assert.ElementsMatch(t, []string{"notes://open/{id}", "notes://admin/{id}", "notes://drafts/{id}"}, listed(t, reply, "resourceTemplates", "uriTemplate"))
				_, reply = bob.rpc(t, "resources/templates/list", nil)
				assert.ElementsMatch(t, []string{"notes://open/{id}", "notes://drafts/{id}"}, listed(t, reply, "resourceTemplates", "uriTemplate"))
			})

			reads := []struct {
				user, uri string
				status    int
				challenge string
				denied    bool
			}{
				{"bob", "notes://open/7", 200, "", false},
				{"bob", "notes://admin/7", 200, "", true},
				{"alice", "notes://admin/7", 200, "", false},
				{"bob", "notes://drafts/7", 403, scopeChallenge("notes:write"), false},
				{"alice", "notes://drafts/7", 200, "", false},
			}
			for _, tc := range reads {
				t.Run("read "+tc.user+" "+tc.uri, func(t *testing.T) {
					resp, reply := callers[tc.user].rpc(t, "resources/read", map[string]any{"uri": tc.uri})
					assert.Equal(t, tc.status, resp.StatusCode, reply.raw)
					assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
					switch {
					case tc.status != 200:
						assert.NotContains(t, reply.raw, "secret")
					case tc.denied:
						require.NotNil(t, reply.Error, reply.raw)
						assert.Equal(t, mcp.INTERNAL_ERROR, reply.Error.Code)
						assert.Equal(t, "access denied", reply.Error.Message)
						assert.NotContains(t, reply.raw, "secret")
					default:
						require.Nil(t, reply.Error, reply.raw)
						assert.Contains(t, reply.raw, "secret contents")
					}
				})
			}

			completions := []struct {
				user, uri string
				status    int
				challenge string
				refused   bool
			}{
				{"bob", "notes://open/{id}", 200, "", false},
				{"bob", "notes://admin/{id}", 0, "", true},
				{"bob", "notes://admin/7", 0, "", true},
				{"alice", "notes://admin/{id}", 200, "", false},
				{"bob", "notes://drafts/{id}", 403, scopeChallenge("notes:write"), false},
				{"alice", "notes://drafts/{id}", 200, "", false},
			}
			for _, tc := range completions {
				t.Run("complete "+tc.user+" "+tc.uri, func(t *testing.T) {
					before := f.completions.Load()
					resp, reply := callers[tc.user].rpc(t, "completion/complete", map[string]any{
						"ref": map[string]any{"type": "ref/resource", "uri": tc.uri}, "argument": map[string]any{"name": "id", "value": ""}})
					assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
					if tc.refused {
						assert.Equal(t, map[bool]int{false: http.StatusOK, true: http.StatusBadRequest}[era.modern], resp.StatusCode)
						require.NotNil(t, reply.Error, reply.raw)
						assert.Equal(t, mcp.INVALID_REQUEST, reply.Error.Code)
						assert.Equal(t, "handler not found for resource URI '"+tc.uri+"': resource not found", reply.Error.Message)
					} else {
						assert.Equal(t, tc.status, resp.StatusCode, reply.raw)
					}
					ran := f.completions.Load() > before
					assert.Equal(t, tc.status == 200, ran, "the app's completion provider ran")
					if ran {
						assert.Contains(t, reply.raw, tc.uri+"-secret")
					} else {
						assert.NotContains(t, reply.raw, "secret")
					}
				})
			}

			t.Run("subscribe", func(t *testing.T) {
				if era.modern {
					for _, tc := range []struct {
						token, uri string
						status     int
					}{{f.bob, "notes://admin/7", 403}, {f.bob, "notes://drafts/7", 403}, {f.bob, "notes://open/7", 200},
						{f.alice, "notes://admin/7", 200}, {f.alice, "notes://drafts/7", 200}} {
						assert.Equal(t, tc.status, listenStatus(t, f.url, tc.token, tc.uri), tc.uri)
					}
					return
				}
				_, reply := bob.rpc(t, "resources/subscribe", map[string]any{"uri": "notes://admin/7"})
				require.NotNil(t, reply.Error, reply.raw)
				assert.Equal(t, mcp.INVALID_REQUEST, reply.Error.Code)
				assert.Equal(t, "handler not found for resource URI 'notes://admin/7': resource not found", reply.Error.Message)
				resp, _ := bob.rpc(t, "resources/subscribe", map[string]any{"uri": "notes://drafts/7"})
				assert.Equal(t, http.StatusForbidden, resp.StatusCode)
				assert.Equal(t, scopeChallenge("notes:write"), resp.Header.Get("WWW-Authenticate"))
				assert.Empty(t, f.recorded(bob.session))
				for _, uri := range []string{"notes://admin/7", "notes://drafts/7"} {
					_, reply = alice.rpc(t, "resources/subscribe", map[string]any{"uri": uri})
					require.Nil(t, reply.Error, reply.raw)
				}
				assert.Equal(t, []string{"notes://admin/7", "notes://drafts/7"}, f.recorded(alice.session))
			})
		})
	}
}

// listenStatus opens a 2026-07-28 subscriptions/listen stream for uri and
// returns its status.
func listenStatus(t *testing.T, url, token, uri string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	params := map[string]any{"notifications": map[string]any{"resourceSubscriptions": []string{uri}},
		"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": itemsModern, "io.modelcontextprotocol/clientCapabilities": map[string]any{}}}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen", "params": params})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", itemsModern)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close() // the stream stays open otherwise
	return resp.StatusCode
}

func TestResourceTemplatesListPagesNameNoHiddenTemplate(t *testing.T) {
	f := newItemsServer(t, itemsConfig{extra: []server.ServerOption{server.WithPaginationLimit(1)}})
	walk := func(t *testing.T, c itemCaller, hidden string) []string {
		t.Helper()
		var raws []string
		params := map[string]any{}
		for range 10 {
			resp, reply := c.rpc(t, "resources/templates/list", params)
			require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
			raws = append(raws, listed(t, reply, "resourceTemplates", "uriTemplate")...)
			var page struct{ NextCursor string }
			require.NoError(t, json.Unmarshal(reply.Result, &page))
			if hidden != "" {
				assert.NotContains(t, reply.raw, hidden)
				decoded, _ := base64.StdEncoding.DecodeString(page.NextCursor)
				assert.NotContains(t, string(decoded), hidden, "a cursor names the hidden template")
			}
			if page.NextCursor == "" {
				return raws
			}
			params = map[string]any{"cursor": page.NextCursor}
		}
		t.Fatal("pagination did not end")
		return nil
	}
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			assert.ElementsMatch(t, []string{"notes://open/{id}", "notes://drafts/{id}"}, walk(t, itemCallerFor(t, f.url, f.bob, era.modern), "admin"))
			assert.ElementsMatch(t, []string{"notes://open/{id}", "notes://admin/{id}", "notes://drafts/{id}"}, walk(t, itemCallerFor(t, f.url, f.alice, era.modern), ""))
		})
	}
}

// mcp-go decodes JSON escapes in a method name; so must the Policy.
func TestEscapedMethodNamesAreRefusedAlike(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	bob := itemCallerFor(t, f.url, f.bob, false)
	tests := []struct{ method, params, message string }{
		{`completion\u002fcomplete`, `{"ref":{"type":"ref/prompt","name":"admin_prompt"},"argument":{"name":"a","value":""}}`,
			"prompt 'admin_prompt' not found: prompt not found"},
		{`resources\/subscribe`, `{"uri":"notes://audit"}`,
			"handler not found for resource URI 'notes://audit': resource not found"},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			before := f.completions.Load()
			body := `{"jsonrpc":"2.0","id":9,"method":"` + tc.method + `","params":` + tc.params + `}`
			resp, reply := bob.post(t, "", []byte(tc.params), []byte(body))
			require.Equal(t, http.StatusOK, resp.StatusCode, reply.raw)
			require.NotNil(t, reply.Error, reply.raw)
			assert.Equal(t, mcp.INVALID_REQUEST, reply.Error.Code)
			assert.Equal(t, tc.message, reply.Error.Message)
			assert.Equal(t, before, f.completions.Load())
			assert.Empty(t, f.recorded(bob.session))
		})
	}
}

// prompts/get of a hidden prompt is mcp-go's own answer for an unknown one:
// its prompt filter runs at get time too.
func TestPromptsGetOfAHiddenPromptLooksUnknown(t *testing.T) {
	f := newItemsServer(t, itemsConfig{})
	for _, era := range itemEras {
		t.Run(era.name, func(t *testing.T) {
			bob := itemCallerFor(t, f.url, f.bob, era.modern)
			for _, name := range []string{"admin_prompt", "no_such_prompt"} {
				resp, reply := bob.rpc(t, "prompts/get", map[string]any{"name": name})
				assert.Equal(t, map[bool]int{false: http.StatusOK, true: http.StatusBadRequest}[era.modern], resp.StatusCode)
				require.NotNil(t, reply.Error, reply.raw)
				assert.Equal(t, mcp.INVALID_PARAMS, reply.Error.Code)
				assert.Equal(t, "prompt '"+name+"' not found: prompt not found", reply.Error.Message)
			}
			_, reply := itemCallerFor(t, f.url, f.alice, era.modern).rpc(t, "prompts/get", map[string]any{"name": "admin_prompt"})
			require.Nil(t, reply.Error, reply.raw)
			assert.Contains(t, reply.raw, "secret prompt")
		})
	}
}
