package descope_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// Caller isolation: user B, holding everything user A leaked (session ID,
// event ID, task ID, request ID), gets nothing of A's, and A loses nothing.

const (
	unknownSession = "Invalid session ID\n"
	tasksRefused   = `"error":{"code":-32601,"message":"Tasks are not available on this server: they are not yet tied to the caller who created them. Call the tool without task augmentation."}}`
	modernMeta     = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
)

// isolationFixture is a server with every channel mcp-go offers: sessions,
// an event store (resumption), a tool that reports progress, task support,
// subscriptions.
type isolationFixture struct {
	ds         *descopetest.Server
	mcp        *server.MCPServer
	url        string
	alice, bob string
	progressed chan struct{} // the progress tool sent its notification
	release    chan struct{} // lets the progress tool return
}

func newIsolationFixture(t *testing.T, opts ...auth.Option) *isolationFixture {
	t.Helper()
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	f := &isolationFixture{ds: ds, progressed: make(chan struct{}, 16), release: make(chan struct{})}
	// What belongs to alice alone: a resource and a template of resources.
	pol := auth.NewPolicy()
	s := server.NewMCPServer("iso", "1.0.0", append(pol.ServerOptions(),
		server.WithTaskCapabilities(true, true, true),
		server.WithResourceCapabilities(true, true),
		server.WithCompletions(),
		server.WithResourceCompletionProvider(secretCompleter{}))...)
	alicesOnly := auth.RequireRule(func(c *auth.Claims) bool { return c.Subject == "U2alice" })
	read := func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "secret diary of U2alice"}}, nil
	}
	pol.AddResource(s, mcp.NewResource("notes://alice/diary", "alice's diary"), read, alicesOnly)
	pol.AddResourceTemplate(s, mcp.NewResourceTemplate("notes://alice/drafts/{id}", "alice's drafts"), read, alicesOnly)
	s.AddTool(mcp.NewTool("echo", mcp.WithTaskSupport(mcp.TaskSupportOptional)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			c, _ := auth.ClaimsFromContext(ctx)
			return mcp.NewToolResultText("echo for " + c.Subject), nil
		})
	s.AddTool(mcp.NewTool("progress"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress",
			map[string]any{"progressToken": "p1", "progress": 1, "message": "secret progress of " + subjectOf(ctx)})
		f.progressed <- struct{}{}
		select {
		case <-f.release:
		case <-ctx.Done():
		}
		return mcp.NewToolResultText("secret result of " + subjectOf(ctx)), nil
	})
	f.mcp = s
	h := server.NewStreamableHTTPServer(s, auth.SessionBinding(nil), server.WithEventStore(server.NewInMemoryEventStore()))
	srv := httptest.NewServer(auth.Handler(p, h, append([]auth.Option{auth.WithPolicy(pol)}, opts...)...))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { closeOnce(f.release) })
	f.url = srv.URL + "/mcp"
	f.alice = ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice"})
	f.bob = ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob"})
	return f
}

// secretCompleter completes any resource argument with alice's secret.
type secretCompleter struct{}

func (secretCompleter) CompleteResourceArgument(context.Context, string, mcp.CompleteArgument, mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{"secret draft of U2alice"}}, nil
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

func subjectOf(ctx context.Context) string {
	c, _ := auth.ClaimsFromContext(ctx)
	return c.Subject
}

// openSession initializes a 2025-11-25 session and sends
// notifications/initialized, as a client does.
func openSession(t *testing.T, url, token string) string {
	t.Helper()
	id := legacySession(t, url, token)
	resp, body := legacyPost(t, url, token, id, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	return id
}

// send makes one request to the endpoint and returns status, headers and body.
func send(t *testing.T, method, url, token string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body == "" {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body) // a stream is cut by the timeout: what came is enough
	return resp.StatusCode, resp.Header, string(b)
}

func legacyHeaders(session string) map[string]string {
	h := map[string]string{"MCP-Protocol-Version": "2025-11-25"}
	if session != "" {
		h["Mcp-Session-Id"] = session
	}
	return h
}

// sseStream is an open GET stream, read event by event.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	data   chan string
	ended  chan time.Time
}

func openStream(t *testing.T, url, token string, header map[string]string, method, body string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Accept", "text/event-stream, application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	s := &sseStream{resp: resp, cancel: cancel, data: make(chan string, 64), ended: make(chan time.Time, 1)}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.data <- d
			}
		}
		s.ended <- time.Now()
	}()
	return s
}

// next waits for the next event that contains want.
func (s *sseStream) next(t *testing.T, want string) bool {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case d := <-s.data:
			if strings.Contains(d, want) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func TestGETStreamsAreTheSessionOwners(t *testing.T) {
	f := newIsolationFixture(t)
	session := openSession(t, f.url, f.alice)

	// Bob with alice's session: the answer of an unknown session, and no stream.
	status, h, body := send(t, http.MethodGet, f.url, f.bob, legacyHeaders(session), "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, unknownSession, body)
	assert.Equal(t, "text/plain; charset=utf-8", h.Get("Content-Type"))

	// The same bytes as a session nobody ever opened.
	status2, _, body2 := send(t, http.MethodGet, f.url, f.bob, legacyHeaders("s2.nope.nope.1.nope"), "")
	assert.Equal(t, status, status2)
	assert.Equal(t, body, body2)

	// Alice's own stream receives what is sent to her session.
	f.assertStreamReceives(t, f.alice, session, "for alice only")
}

// assertStreamReceives opens the GET stream of session with token and
// checks that a notification sent to the session arrives on it.
func (f *isolationFixture) assertStreamReceives(t *testing.T, token, session, text string) {
	t.Helper()
	st := openStream(t, f.url, token, legacyHeaders(session), http.MethodGet, "")
	require.Equal(t, http.StatusOK, st.resp.StatusCode)
	require.Eventually(t, func() bool {
		return f.mcp.SendNotificationToSpecificClient(session, "notifications/message",
			map[string]any{"level": "info", "data": text}) == nil
	}, 2*time.Second, 20*time.Millisecond)
	assert.True(t, st.next(t, text))
}

func TestProgressOfACallStaysWithItsCaller(t *testing.T) {
	f := newIsolationFixture(t)
	session := openSession(t, f.url, f.alice)

	// Bob tries to open a stream on alice's session before her call runs.
	status, _, _ := send(t, http.MethodGet, f.url, f.bob, legacyHeaders(session), "")
	require.Equal(t, http.StatusNotFound, status)

	call := openStream(t, f.url, f.alice, legacyHeaders(session), http.MethodPost,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"progress","_meta":{"progressToken":"p1"}}}`)
	<-f.progressed
	assert.True(t, call.next(t, "secret progress of U2alice"), "alice gets her progress")
	closeOnce(f.release)
	assert.True(t, call.next(t, "secret result of U2alice"), "and her result")
}

func TestResumptionReplaysOnlyTheCallersEvents(t *testing.T) {
	f := newIsolationFixture(t)
	session := openSession(t, f.url, f.alice)
	closeOnce(f.release)
	call := openStream(t, f.url, f.alice, legacyHeaders(session), http.MethodPost,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"progress","_meta":{"progressToken":"p1"}}}`)
	require.True(t, call.next(t, "secret result of U2alice"))
	bobSession := openSession(t, f.url, f.bob)

	resume := func(token, session, lastEventID string) (int, string) {
		h := legacyHeaders(session)
		h["Last-Event-ID"] = lastEventID
		status, _, body := send(t, http.MethodGet, f.url, token, h, "")
		return status, body
	}
	// Event IDs of the in-memory store are a counter: bob tries each.
	for _, id := range []string{"0", "1", "2", "3"} {
		status, body := resume(f.bob, session, id)
		assert.Equal(t, http.StatusNotFound, status, "alice's session, event %s", id)
		assert.Equal(t, unknownSession, body)

		status, body = resume(f.bob, "", id)
		assert.Equal(t, http.StatusNotFound, status, "no session, event %s", id)
		assert.NotContains(t, body, "secret")

		status, body = resume(f.bob, bobSession, id)
		assert.NotContains(t, body, "secret", "his own session, alice's event %s", id)
		assert.NotEqual(t, http.StatusOK, status)
	}
	// Alice can still resume her own stream.
	st := openStream(t, f.url, f.alice, map[string]string{"MCP-Protocol-Version": "2025-11-25",
		"Mcp-Session-Id": session, "Last-Event-ID": "1"}, http.MethodGet, "")
	require.Equal(t, http.StatusOK, st.resp.StatusCode)
	assert.True(t, st.next(t, "secret result of U2alice"))
}

func TestEndedSessionsStayEnded(t *testing.T) {
	f := newIsolationFixture(t)
	session := openSession(t, f.url, f.alice)

	// Bob cannot end it: for him it does not exist.
	status, _, body := send(t, http.MethodDelete, f.url, f.bob, legacyHeaders(session), "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, unknownSession, body)
	resp, out := legacyPost(t, f.url, f.alice, session, legacyList)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)

	status, _, _ = send(t, http.MethodDelete, f.url, f.alice, legacyHeaders(session), "")
	require.Equal(t, http.StatusOK, status)
	for _, verb := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		body := ""
		if verb == http.MethodPost {
			body = legacyList
		}
		status, _, got := send(t, verb, f.url, f.alice, legacyHeaders(session), body)
		assert.Equal(t, http.StatusNotFound, status, "%s after DELETE", verb)
		assert.Equal(t, unknownSession, got)
	}
	// A new session works.
	again := openSession(t, f.url, f.alice)
	resp, out = legacyPost(t, f.url, f.alice, again, legacyList)
	assert.Equal(t, http.StatusOK, resp.StatusCode, out)
}

func TestSessionsExpire(t *testing.T) {
	f := newIsolationFixture(t, auth.WithSessionLifetime(time.Second))
	session := openSession(t, f.url, f.alice)
	resp, out := legacyPost(t, f.url, f.alice, session, legacyList)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	require.Eventually(t, func() bool {
		resp, _ := legacyPost(t, f.url, f.alice, session, legacyList)
		return resp.StatusCode == http.StatusNotFound
	}, 5*time.Second, 100*time.Millisecond, "the session outlived its lifetime")
	status, _, _ := send(t, http.MethodGet, f.url, f.alice, legacyHeaders(session), "")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestUnboundServersAreRefusedAtTheFirstSession(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	logs := &syncWriter{w: &strings.Builder{}}
	log := slog.New(slog.NewTextHandler(logs, nil))
	srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(server.NewMCPServer("t", "1", server.WithToolCapabilities(false))), auth.WithLogger(log)))
	t.Cleanup(srv.Close)
	alice := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice"})

	resp, body := legacyPost(t, srv.URL+"/mcp", alice, "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Equal(t, `{"error":"server_error","error_description":"The server is misconfigured and cannot open a session."}`, body)
	assert.Empty(t, resp.Header.Get("Mcp-Session-Id"), "the unbound session is never handed out")
	assert.Contains(t, logs.String(), "pass auth.SessionBinding(secret) to server.NewStreamableHTTPServer")

	// Sessionless requests do not need the binding.
	resp, body = modernCall(t, srv.URL+"/mcp", alice, "tools/list", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
}

// syncWriter serializes writes to a strings.Builder.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func TestTasksAreRefusedInBothEras(t *testing.T) {
	f := newIsolationFixture(t)
	session := openSession(t, f.url, f.alice)
	legacy := func(token, body string) (int, string) {
		resp, out := legacyPost(t, f.url, token, session, body)
		return resp.StatusCode, out
	}
	modern := func(token, body string) (int, string) {
		status, _, out := send(t, http.MethodPost, f.url, token, map[string]string{"MCP-Protocol-Version": "2026-07-28"}, body)
		return status, out
	}
	for _, tc := range []struct {
		name, method, params string
	}{
		{"task-augmented call", "tools/call", `{"name":"echo","task":{"ttl":60000}`},
		{"task member in capitals", "tools/call", `{"name":"echo","TASK":{"ttl":60000}`},
		{"escaped task member", "tools/call", `{"name":"echo","\u0074ask":{}`},
		{"tasks/list", "tasks/list", `{`},
		{"tasks/get", "tasks/get", `{"taskId":"1"`},
		{"tasks/result", "tasks/result", `{"taskId":"1"`},
		{"tasks/cancel", "tasks/cancel", `{"taskId":"1"`},
	} {
		t.Run(tc.name+" (2025-11-25)", func(t *testing.T) {
			status, body := legacy(f.alice, `{"jsonrpc":"2.0","id":"t-1","method":"`+tc.method+`","params":`+tc.params+`}}`)
			assert.Equal(t, http.StatusOK, status)
			assert.Equal(t, `{"jsonrpc":"2.0","id":"t-1",`+tasksRefused, body)
		})
		t.Run(tc.name+" (2026-07-28)", func(t *testing.T) {
			sep := ","
			if tc.params == "{" {
				sep = ""
			}
			status, body := modern(f.bob, `{"jsonrpc":"2.0","id":42,"method":"`+tc.method+`","params":`+tc.params+sep+modernMeta+`}}`)
			assert.Equal(t, http.StatusOK, status)
			assert.Equal(t, `{"jsonrpc":"2.0","id":42,`+tasksRefused, body)
		})
	}
	// A call without a task still works, and a null task is no task.
	status, body := legacy(f.alice, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","task":null}}`)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "echo for U2alice")
	resp, out := modernCall(t, f.url, f.alice, "tools/call", "echo", map[string]any{"arguments": map[string]any{"task": "a word in arguments"}})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, out, "echo for U2alice", "the word task elsewhere in params is no task")
}

func TestStreamsEndWithTheirToken(t *testing.T) {
	f := newIsolationFixture(t)
	short := func() (string, time.Time) {
		exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		return f.ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice", "exp": exp.Unix()}), exp
	}
	t.Run("GET stream (2025-11-25)", func(t *testing.T) {
		token, exp := short()
		session := openSession(t, f.url, token)
		st := openStream(t, f.url, token, legacyHeaders(session), http.MethodGet, "")
		require.Equal(t, http.StatusOK, st.resp.StatusCode)
		select {
		case end := <-st.ended:
			assert.False(t, end.Before(exp), "ended at %v, before the token's expiry %v", end, exp)
		case <-time.After(10 * time.Second):
			t.Fatal("the stream outlived its token")
		}
	})
	// The connection a cut stream used serves the next request as usual.
	next := func(t *testing.T) {
		t.Helper()
		resp, body := modernCall(t, f.url, f.alice, "tools/list", "", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Contains(t, body, `"echo"`)
	}
	defer t.Run("a later request", next)
	t.Run("subscriptions/listen (2026-07-28)", func(t *testing.T) {
		token, exp := short()
		st := openStream(t, f.url, token, map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"},
			http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},`+modernMeta+`}}`)
		require.Equal(t, http.StatusOK, st.resp.StatusCode)
		select {
		case end := <-st.ended:
			assert.False(t, end.Before(exp), "ended at %v, before the token's expiry %v", end, exp)
		case <-time.After(10 * time.Second):
			t.Fatal("the stream outlived its token")
		}
	})
}

func TestNullIDNotificationsCannotCancelOthers(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	alice := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2alice"})
	bob := ds.Mint(map[string]any{"aud": resourceURL, "sub": "U2bob"})
	for _, idMember := range []string{`"id":null,`, `"id":1,"id":null,`, `"ID":null,`} {
		t.Run(idMember, func(t *testing.T) {
			cancelled, status := cancelOthersWith(t, func(s *server.MCPServer) http.Handler {
				return auth.Handler(p, server.NewStreamableHTTPServer(s))
			}, alice, bob, idMember)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.False(t, cancelled, "bob's cancellation is refused")
		})
	}
}

// TestCrossUserTable: bob holds everything alice leaked (her session ID,
// her event IDs, her request ID, task IDs) and tries every channel; he
// gets nothing of hers, and she loses nothing.
func TestCrossUserTable(t *testing.T) {
	f := newIsolationFixture(t)
	alice := openSession(t, f.url, f.alice)
	bob := openSession(t, f.url, f.bob)

	// Alice's call is running (request ID 7) and has recorded events.
	call := openStream(t, f.url, f.alice, legacyHeaders(alice), http.MethodPost,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"progress","_meta":{"progressToken":"p1"}}}`)
	<-f.progressed
	require.True(t, call.next(t, "secret progress of U2alice"))

	with := func(session string, extra map[string]string) map[string]string {
		h := legacyHeaders(session)
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	modern := map[string]string{"MCP-Protocol-Version": "2026-07-28"}
	modernCalling := func(method string) map[string]string {
		return map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	}
	rows := []struct {
		channel, method string
		header          map[string]string
		body            string
		status          int
		exact           string // the whole body, when it is fixed
	}{
		{"POST in alice's session", "POST", with(alice, nil), legacyList, 404, unknownSession},
		{"POST, modern, naming alice's session", "POST", with(alice, modern),
			`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`, 404, unknownSession},
		{"GET stream on alice's session", "GET", with(alice, nil), "", 404, unknownSession},
		{"resumption on alice's session", "GET", with(alice, map[string]string{"Last-Event-ID": "1"}), "", 404, unknownSession},
		{"resumption without a session", "GET", with("", map[string]string{"Last-Event-ID": "1"}), "", 404, unknownSession},
		{"resumption of alice's event on his session", "GET", with(bob, map[string]string{"Last-Event-ID": "1"}), "", 400, "Unknown Last-Event-ID\n"},
		{"DELETE alice's session", "DELETE", with(alice, nil), "", 404, unknownSession},
		{"a response posted into alice's session", "POST", with(alice, nil), `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`, 404, unknownSession},
		{"tasks/list", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":2,"method":"tasks/list"}`, 200, `{"jsonrpc":"2.0","id":2,` + tasksRefused},
		{"tasks/get of a leaked task ID", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":2,"method":"tasks/get","params":{"taskId":"1"}}`, 200, `{"jsonrpc":"2.0","id":2,` + tasksRefused},
		{"tasks/result, modern", "POST", modern, `{"jsonrpc":"2.0","id":2,"method":"tasks/result","params":{"taskId":"1",` + modernMeta + `}}`, 200, `{"jsonrpc":"2.0","id":2,` + tasksRefused},
		{"tasks/cancel, modern", "POST", modern, `{"jsonrpc":"2.0","id":2,"method":"tasks/cancel","params":{"taskId":"1",` + modernMeta + `}}`, 200, `{"jsonrpc":"2.0","id":2,` + tasksRefused},
		{"cancel alice's request ID, modern", "POST", modern, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,` + modernMeta + `}}`, 400, ""},
		{"cancel with a null id, modern", "POST", modern, `{"jsonrpc":"2.0","id":null,"method":"notifications/cancelled","params":{"requestId":7,` + modernMeta + `}}`, 400, ""},
		{"cancel alice's request ID outside a session", "POST", legacyHeaders(""), `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`, 400, ""},
		{"cancel alice's request ID in his own session", "POST", with(bob, nil), `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`, 202, ""},
		// mcp-go reads the version as an exact map key: a second spelling
		// of the key must not make the middleware see a legacy message.
		{"cancel in his own session, modern by the body, key spelled twice", "POST", with(bob, nil),
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","IO.MODELCONTEXTPROTOCOL/PROTOCOLVERSION":"2025-11-25"}}}`, 400,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Notifications are accepted only within the caller's own session."}}`},
		{"resources/list", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":3,"method":"resources/list"}`, 200, ""},
		{"resources/templates/list", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":3,"method":"resources/templates/list"}`, 200, ""},
		{"resources/read of alice's resource", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"notes://alice/diary"}}`, 200, ""},
		{"resources/read under alice's template, modern", "POST", with("", map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/read", "Mcp-Name": "notes://alice/drafts/1"}), `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"notes://alice/drafts/1",` + modernMeta + `}}`, 200, ""},
		{"completion/complete of alice's template", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"notes://alice/drafts/{id}"},"argument":{"name":"id","value":""}}}`, 200, ""},
		{"resources/subscribe to alice's resource", "POST", with(bob, nil), `{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"notes://alice/diary"}}`, 200, ""},
		{"subscriptions/listen to alice's resource", "POST", modernCalling("subscriptions/listen"), `{"jsonrpc":"2.0","id":3,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["notes://alice/diary"]},` + modernMeta + `}}`, 403, ""},
	}
	for _, row := range rows {
		t.Run(row.channel, func(t *testing.T) {
			status, _, body := send(t, row.method, f.url, f.bob, row.header, row.body)
			assert.Equal(t, row.status, status, body)
			if row.exact != "" {
				assert.Equal(t, row.exact, body)
			}
			assert.NotContains(t, body, "secret")
			assert.NotContains(t, body, "U2alice")
			assert.NotContains(t, body, "notes://alice/diary\",\"name", "listed")
			assert.NotContains(t, body, "alice's")
			if row.status == 200 && strings.HasPrefix(row.body, `{"jsonrpc":"2.0","id":3`) && !strings.Contains(row.body, "/list") {
				assert.Contains(t, body, `"error"`, "refused")
			}
		})
	}

	// Alice lost nothing: her call runs on and ends with its result, her
	// session still serves her, her stream still reaches her, and she can
	// resume her own events.
	closeOnce(f.release)
	assert.True(t, call.next(t, "secret result of U2alice"), "alice's call was not cancelled")
	resp, out := legacyPost(t, f.url, f.alice, alice, legacyList)
	assert.Equal(t, http.StatusOK, resp.StatusCode, out)
	f.assertStreamReceives(t, f.alice, alice, "still alice's")
	resume := openStream(t, f.url, f.alice, with(alice, map[string]string{"Last-Event-ID": "1"}), http.MethodGet, "")
	require.Equal(t, http.StatusOK, resume.resp.StatusCode)
	assert.True(t, resume.next(t, "secret result of U2alice"))
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"notes://alice/diary"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"notes://alice/drafts/1"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/templates/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"notes://alice/drafts/{id}"},"argument":{"name":"id","value":""}}}`,
	} {
		resp, out := legacyPost(t, f.url, f.alice, alice, req)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotContains(t, out, `"error"`, req)
		assert.Contains(t, out, "alice", req)
	}
}
