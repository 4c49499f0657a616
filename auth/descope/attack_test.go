package descope_test

// Attacks by a signed-in user (bob) on the middleware's caller isolation:
// each test here names a way the middleware and mcp-go v1.2.1 read the same
// request differently, and fails while they do.

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
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

// collectUntil reads a stream's events until one contains marker and
// returns those that came before it.
func (s *sseStream) collectUntil(t *testing.T, marker string) []string {
	t.Helper()
	var before []string
	timeout := time.After(5 * time.Second)
	for {
		select {
		case d := <-s.data:
			if strings.Contains(d, marker) {
				return before
			}
			before = append(before, d)
		case <-timeout:
			t.Fatalf("no event with %q; got %q", marker, before)
			return nil
		}
	}
}

// encoding/json matches member names case-insensitively under Unicode
// simple folding: "ſ" (U+017F) folds to "s" and "K" (U+212A) to "k". mcp-go
// decodes params.task that way, so "taſk" is a task; the middleware's first
// look (mayNameTask) searches for the ASCII letters t-a-s-k or a backslash
// only, skips the decode, and lets the task through. Once a task exists,
// mcp-go broadcasts its status to every session, alice's included.
func TestAttackTaskMemberSpelledWithUnicodeFolding(t *testing.T) {
	f := newIsolationFixture(t)
	alice := openSession(t, f.url, f.alice)
	aliceStream := openStream(t, f.url, f.alice, legacyHeaders(alice), http.MethodGet, "")
	require.Equal(t, http.StatusOK, aliceStream.resp.StatusCode)
	bob := openSession(t, f.url, f.bob)

	for _, member := range []string{"ta\u017fk", "tas\u212a", "TA\u017fK"} {
		t.Run(member+" (2025-11-25)", func(t *testing.T) {
			resp, body := legacyPost(t, f.url, f.bob, bob,
				`{"jsonrpc":"2.0","id":"t-1","method":"tools/call","params":{"name":"echo","`+member+`":{"ttl":60000}}}`)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, `{"jsonrpc":"2.0","id":"t-1",`+tasksRefused, body, "a task was created")
			assert.NotContains(t, body, "taskId")
		})
		t.Run(member+" (2026-07-28)", func(t *testing.T) {
			status, _, body := send(t, http.MethodPost, f.url, f.bob,
				map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"},
				`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","`+member+`":{"ttl":60000},`+modernMeta+`}}`)
			assert.Equal(t, http.StatusOK, status)
			assert.Equal(t, `{"jsonrpc":"2.0","id":42,`+tasksRefused, body, "a task was created")
			assert.NotContains(t, body, "taskId")
		})
	}

	// Alice's stream carries nothing of bob's.
	require.Eventually(t, func() bool {
		return f.mcp.SendNotificationToSpecificClient(alice, "notifications/message",
			map[string]any{"level": "info", "data": "end of test"}) == nil
	}, 2*time.Second, 20*time.Millisecond)
	got := strings.Join(aliceStream.collectUntil(t, "end of test"), "\n")
	assert.NotContains(t, got, "notifications/tasks/status", "bob's task status reached alice's stream")
}

// The middleware keeps params as raw bytes, so of two "params" members the
// last one wins; mcp-go decodes params into a struct, and a second "params"
// object only overwrites the fields it names. A listen request whose first
// params name a resource bob's rules deny, and whose second params name
// nothing, passes the middleware's check (no URI) while mcp-go establishes
// the subscription from the first. Nothing on mcp-go's side (no Policy
// hook) checks subscriptions/listen, so the app's listen hooks record bob on
// the admin-only resource and the acknowledgement confirms it.
func TestAttackListenWithTwoParamsMembers(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})

	var mu sync.Mutex
	var recorded []string
	hooks := &server.Hooks{}
	hooks.AddBeforeSubscriptionsListen(func(_ context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, req.Params.Notifications.ResourceSubscriptions...)
	})
	pol := auth.NewPolicy()
	s := server.NewMCPServer("notes", "1.0.0", append([]server.ServerOption{server.WithHooks(hooks),
		server.WithResourceCapabilities(true, true)}, pol.ServerOptions()...)...)
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "secret contents"}}, nil
	}
	pol.AddResource(s, mcp.NewResource("notes://audit", "audit"), read, descope.RequireRoles("admin"))
	srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s, auth.SessionBinding([]byte("attack test secret one..."))), auth.WithPolicy(pol)))
	t.Cleanup(srv.Close)
	url := srv.URL + "/mcp"
	bob := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob", "roles": nil})

	listen := func(body string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "subscriptions/listen")
		req.Header.Set("Authorization", "Bearer "+bob)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		// A stream: its first event is the acknowledgement.
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				return resp.StatusCode, d
			}
		}
		return resp.StatusCode, ""
	}
	const denied = `{"error":"access_denied","error_description":"The subscription names a resource this caller may not read."}`

	// One params member: refused, as the Policy promises.
	status, body := listen(`{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["notes://audit"]},` + modernMeta + `}}`)
	require.Equal(t, http.StatusForbidden, status, body)
	require.Equal(t, denied, body)

	// Two: mcp-go would merge both, where a raw copy keeps the last, so
	// such a body is refused whole.
	status, body = listen(`{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen",` +
		`"params":{"notifications":{"resourceSubscriptions":["notes://audit"]},` + modernMeta + `},` +
		`"params":{` + modernMeta + `}}`)
	assert.Equal(t, http.StatusBadRequest, status, body)
	assert.Equal(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"A message may name params only once."}}`, body)
	// Also when the second is spelled in another case: encoding/json
	// takes it for the same member.
	status, body = listen(`{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen",` +
		`"params":{"notifications":{"resourceSubscriptions":["notes://audit"]},` + modernMeta + `},` +
		`"PARAMS":{` + modernMeta + `}}`)
	assert.Equal(t, http.StatusBadRequest, status, body)
	assert.NotContains(t, body, "notes://audit", "mcp-go acknowledged bob's subscription to the admin-only resource")
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, recorded, "the app's listen hook recorded bob on the admin-only resource")
}

// The middleware decodes a batch into one message struct per element
// before anything else, although mcp-go v1.2.1 refuses every batch. An
// element costs 2 bytes of body ("0,") and about 90 bytes of struct, plus
// the slice's growth: a 4 MB body, well under the default 8 MB cap, makes
// one request allocate about a gigabyte. A handful of them in parallel
// exhaust a server's memory, from any signed-in caller.
func TestAttackBatchBodyAmplifiesMemory(t *testing.T) {
	f := newIsolationFixture(t)
	var b strings.Builder
	b.WriteByte('[')
	for b.Len() < 4<<20 {
		b.WriteString("0,")
	}
	b.WriteString("0]")
	body := b.String()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+f.bob)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)

	allocated := after.TotalAlloc - before.TotalAlloc
	// Reading and handing on the body costs a few copies of it; 32 copies
	// is generous.
	assert.Less(t, allocated, uint64(32*len(body)),
		"one %d-byte request allocated %d MB", len(body), allocated>>20)
}

// The memory of ended sessions is bounded. Bob opens and ends sessions of
// his own, past what one caller's ended sessions may hold, hoping that
// alice's ended session is forgotten and the session ID she ended (say at
// sign-out, because it leaked) serves requests again. The spec asks that
// an ended session's ID get 404: bob only ever makes room among his own.
func TestAttackEndedSessionsAreForgottenUnderChurn(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	s := server.NewMCPServer("notes", "1.0.0", server.WithToolCapabilities(false))
	srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s, auth.SessionBinding([]byte("attack test secret churn.")))))
	t.Cleanup(srv.Close)
	url := srv.URL + "/mcp"
	alice := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice"})
	bob := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob"})

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(hc.CloseIdleConnections)
	do := func(method, token, session, body string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if body == "" {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
			return resp.StatusCode, id
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

	status, session := do(http.MethodPost, alice, "", initialize)
	require.Equal(t, http.StatusOK, status, session)
	status, body := do(http.MethodDelete, alice, session, "")
	require.Equal(t, http.StatusOK, status, body)
	status, body = do(http.MethodPost, alice, session, legacyList)
	require.Equal(t, http.StatusNotFound, status, body)

	time.Sleep(1100 * time.Millisecond) // bob's sessions are issued after hers
	const churn = 1<<10 + 64            // past what one caller's ended sessions may hold
	var wg sync.WaitGroup
	var failed sync.Once
	next := make(chan struct{}, churn)
	for range churn {
		next <- struct{}{}
	}
	close(next)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				st, id := do(http.MethodPost, bob, "", initialize)
				if st != http.StatusOK {
					failed.Do(func() { t.Errorf("bob's initialize: %d %s", st, id) })
					return
				}
				if st, b := do(http.MethodDelete, bob, id, ""); st != http.StatusOK {
					failed.Do(func() { t.Errorf("bob's DELETE: %d %s", st, b) })
					return
				}
			}
		}()
	}
	wg.Wait()

	status, body = do(http.MethodPost, alice, session, legacyList)
	assert.Equal(t, http.StatusNotFound, status, "alice's ended session serves again: %s", body)
	assert.Equal(t, unknownSession, body)
}
