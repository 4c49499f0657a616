package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// procTimeout bounds every wait on the server process.
const procTimeout = 20 * time.Second

var (
	buildDir  string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "notes-example-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// notesBinary builds the example once per test binary and returns its path.
func notesBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(buildDir, "notes")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running notes server whose output the test can read.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu      sync.Mutex
	lines   []string // complete stdout lines
	partial []byte
	stderr  bytes.Buffer
	changed chan struct{} // signalled on every stdout write
}

type stdoutWriter struct{ p *proc }

func (w stdoutWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.lines = append(p.lines, string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return len(b), nil
}

type stderrWriter struct{ p *proc }

func (w stderrWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// childEnv is the test's environment without any of the server's settings,
// plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "DESCOPE_") || strings.HasPrefix(name, "GITHUB_") ||
			name == "MCP_SERVER_URL" || name == "ADDR" || name == "MCP_SESSION_SECRET" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startNotes runs the built server with env. The process is killed when the
// test ends if it is still running.
func startNotes(t *testing.T, env []string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{}), changed: make(chan struct{}, 1)}
	p.cmd = exec.Command(notesBinary(t))
	p.cmd.Env = env
	p.cmd.Stdout = stdoutWriter{p}
	p.cmd.Stderr = stderrWriter{p}
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("server stdout:\n%s\nserver stderr:\n%s", p.stdout(), p.stderrText())
		}
	})
	return p
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n") + string(p.partial)
}

func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine returns the first stdout line that starts with prefix.
func (p *proc) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(procTimeout)
	exited := false
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.HasPrefix(l, prefix) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		if exited {
			t.Fatalf("server exited (%v) without printing %q", p.cmd.ProcessState, prefix)
		}
		select {
		case <-p.changed:
		case <-p.done:
			exited = true // look once more: all output is in by now
		case <-timeout:
			t.Fatalf("server did not print %q within %v", prefix, procTimeout)
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(procTimeout):
		t.Fatalf("server did not exit within %v", procTimeout)
		return -1
	}
}

// terminate sends SIGTERM and asserts a clean exit.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.wait(t), "exit code after SIGTERM")
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// waitPort polls until addr accepts connections or the process exits.
func (p *proc) waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(procTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("server exited before listening: %v", p.cmd.ProcessState)
		default:
		}
		require.True(t, time.Now().Before(deadline), "server did not listen on %s: %v", addr, err)
		time.Sleep(20 * time.Millisecond)
	}
}

// callTool calls one tool with an mcp-go client carrying token.
func callTool(t *testing.T, endpoint, token, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	tr, err := transport.NewStreamableHTTP(endpoint, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	require.NoError(t, err)
	c := client.NewClient(tr)
	defer c.Close()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "notes-test", Version: "1"}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	return res
}

func resultText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	require.Len(t, res.Content, 1)
	text, ok := res.Content[0].(mcp.TextContent)
	require.True(t, ok, "content is %T", res.Content[0])
	return text.Text
}

// rpc sends one sessionless (protocol 2026-07-28) JSON-RPC request with
// net/http, so that the test sees the HTTP status and headers a transport
// refusal carries; an mcp-go client reports those only as an error. name
// is the tool for tools/call, empty otherwise.
func rpc(t *testing.T, endpoint, token, method, name string, args map[string]any) (*http.Response, []byte) {
	t.Helper()
	v := mcp.ProtocolVersion20260728
	params := map[string]any{"_meta": map[string]any{
		mcp.MetaKeyProtocolVersion:    v,
		mcp.MetaKeyClientCapabilities: map[string]any{},
	}}
	if name != "" {
		params["name"] = name
		if args == nil {
			args = map[string]any{}
		}
		params["arguments"] = args
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, v)
	req.Header.Set(mcp.HeaderMethod, method)
	if name != "" {
		req.Header.Set(mcp.HeaderName, name)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, out
}

// rpcTool calls a tool with rpc, expects HTTP 200, and returns the tool's
// text and whether it is a tool error.
func rpcTool(t *testing.T, endpoint, token, name string, args map[string]any) (string, bool) {
	t.Helper()
	resp, body := rpc(t, endpoint, token, "tools/call", name, args)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var reply struct {
		Result mcp.CallToolResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	return resultText(t, &reply.Result), reply.Result.IsError
}

// listTools returns the names tools/list shows the caller of token.
func listTools(t *testing.T, endpoint, token string) []string {
	t.Helper()
	resp, body := rpc(t, endpoint, token, "tools/list", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var reply struct {
		Result struct{ Tools []struct{ Name string } } `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	var names []string
	for _, tl := range reply.Result.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// scopeChallenge is the WWW-Authenticate value of a 403 for a request that
// needs scopes the token lacks.
func scopeChallenge(base, scopes string) string {
	return `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", ` +
		`scope="` + scopes + `", resource_metadata="` + base + `/.well-known/oauth-protected-resource/mcp"`
}

// assertStepUp checks a transport refusal of a call that lacks scopes.
func assertStepUp(t *testing.T, status int, header http.Header, body []byte, base, scopes string) {
	t.Helper()
	assert.Equal(t, http.StatusForbidden, status, string(body))
	assert.Equal(t, scopeChallenge(base, scopes), header.Get("WWW-Authenticate"))
	assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"The access token does not grant the scope this request requires."}`, string(body))
}

// TestServerWithDescopeFromEnv runs the binary against a fake Descope that
// it learns about only through the environment, as in production.
func TestServerWithDescopeFromEnv(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	addr := freeAddr(t)
	base := "http://" + addr
	p := startNotes(t, childEnv(
		"DESCOPE_CONFIG_URL="+ds.WellKnownURL(),
		"MCP_SERVER_URL="+base,
		"ADDR="+addr,
	))
	p.waitPort(t, addr)
	endpoint := base + "/mcp"

	mint := func(sub, scope string) string {
		return ds.Mint(map[string]any{"sub": sub, "aud": endpoint, "scope": scope})
	}
	alice := descopetest.DefaultUserID
	const bob = "U2bob000000000000000000000000"
	aliceWriter := mint(alice, scopeRead+" "+scopeWrite)
	aliceReader := mint(alice, scopeRead)
	bobWriter := mint(bob, scopeRead+" "+scopeWrite)

	t.Run("whoami", func(t *testing.T) {
		res := callTool(t, endpoint, aliceWriter, "whoami", nil)
		require.False(t, res.IsError, resultText(t, res))
		var id identity
		require.NoError(t, json.Unmarshal([]byte(resultText(t, res)), &id))
		assert.Equal(t, alice, id.Sub)
		assert.Equal(t, descopetest.DefaultClientID, id.ClientID)
		assert.Equal(t, []string{scopeRead, scopeWrite}, id.Scopes)
	})

	t.Run("write refused at the transport without notes:write", func(t *testing.T) {
		resp, body := rpc(t, endpoint, aliceReader, "tools/call", "write_note", map[string]any{"text": "not stored"})
		assertStepUp(t, resp.StatusCode, resp.Header, body, base, scopeWrite)
		res := callTool(t, endpoint, aliceReader, "list_notes", nil)
		require.False(t, res.IsError)
		assert.JSONEq(t, `{"notes":[]}`, resultText(t, res))
	})

	t.Run("write and list", func(t *testing.T) {
		res := callTool(t, endpoint, aliceWriter, "write_note", map[string]any{"text": "buy milk"})
		require.False(t, res.IsError, resultText(t, res))
		assert.Equal(t, "saved", resultText(t, res))
		// A read-only token of the same user sees the note.
		res = callTool(t, endpoint, aliceReader, "list_notes", nil)
		require.False(t, res.IsError)
		var got struct{ Notes []note }
		require.NoError(t, json.Unmarshal([]byte(resultText(t, res)), &got))
		require.Len(t, got.Notes, 1)
		assert.Equal(t, "buy milk", got.Notes[0].Text)
	})

	t.Run("another user sees only their own notes", func(t *testing.T) {
		res := callTool(t, endpoint, bobWriter, "list_notes", nil)
		require.False(t, res.IsError)
		assert.JSONEq(t, `{"notes":[]}`, resultText(t, res))
	})

	everyone := []string{"whoami", "list_notes", "write_note"}
	// Tokens carry the caller's Descope authorization as claims; Mint
	// replaces the fake user's (empty) ones.
	withAuthz := func(sub string, authz map[string]any) string {
		claims := map[string]any{"sub": sub, "aud": endpoint, "scope": scopeRead}
		for k, v := range authz {
			claims[k] = v
		}
		return ds.Mint(claims)
	}

	t.Run("notes_stats needs the admin role", func(t *testing.T) {
		admin := withAuthz("U2admin00000000000000000000", map[string]any{"roles": []string{"admin"}})
		assert.ElementsMatch(t, append(everyone, "notes_stats"), listTools(t, endpoint, admin))
		text, isErr := rpcTool(t, endpoint, admin, "notes_stats", nil)
		require.False(t, isErr, text)
		assert.JSONEq(t, `{"users":1,"notes":1}`, text, "alice's one note")

		for name, token := range map[string]string{
			"no roles":            aliceWriter,
			"another role":        withAuthz(bob, map[string]any{"roles": []string{"editor"}}),
			"admin only a tenant": withAuthz(bob, map[string]any{"dct": "T1", "tenants": map[string]any{"T1": map[string]any{"roles": []string{"admin"}}}}),
		} {
			assert.ElementsMatch(t, everyone, listTools(t, endpoint, token), name)
			text, isErr := rpcTool(t, endpoint, token, "notes_stats", nil)
			assert.True(t, isErr, name)
			assert.Equal(t, auth.DeniedMessage, text, name)
		}
	})

	t.Run("tenant_report needs reports.read in the current tenant", func(t *testing.T) {
		member := withAuthz(alice, map[string]any{"dct": "T1", "tenants": map[string]any{
			"T1": map[string]any{"permissions": []string{"reports.read"}}}})
		assert.ElementsMatch(t, append(everyone, "tenant_report"), listTools(t, endpoint, member))
		text, isErr := rpcTool(t, endpoint, member, "tenant_report", nil)
		require.False(t, isErr, text)
		assert.JSONEq(t, `{"tenant":"T1","your_notes":1}`, text)

		for name, token := range map[string]string{
			"no tenant": aliceWriter,
			"permission in another tenant": withAuthz(alice, map[string]any{"dct": "T1", "tenants": map[string]any{
				"T1": map[string]any{"roles": []string{"member"}}, "T2": map[string]any{"permissions": []string{"reports.read"}}}}),
			"project-wide permission, no current tenant": withAuthz(alice, map[string]any{"permissions": []string{"reports.read"}}),
		} {
			assert.ElementsMatch(t, everyone, listTools(t, endpoint, token), name)
			text, isErr := rpcTool(t, endpoint, token, "tenant_report", nil)
			assert.True(t, isErr, name)
			assert.Equal(t, auth.DeniedMessage, text, name)
		}
	})

	t.Run("no token", func(t *testing.T) {
		resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})

	p.terminate(t)
	assert.NotContains(t, p.stdout(), "DEV MODE")
	assert.Contains(t, p.stdout(), "notes: MCP endpoint "+endpoint)
}

// TestRequiredScopesFollowTheHierarchy runs the binary with
// DESCOPE_REQUIRED_SCOPES=notes:read: notes:write counts as notes:read, and
// a 403 names the endpoint's scopes together with the tool's.
func TestRequiredScopesFollowTheHierarchy(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	addr := freeAddr(t)
	base := "http://" + addr
	p := startNotes(t, childEnv(
		"DESCOPE_CONFIG_URL="+ds.WellKnownURL(),
		"DESCOPE_REQUIRED_SCOPES="+scopeRead,
		"MCP_SERVER_URL="+base,
		"ADDR="+addr,
	))
	p.waitPort(t, addr)
	endpoint := base + "/mcp"
	mint := func(scope string) string { return ds.Mint(map[string]any{"aud": endpoint, "scope": scope}) }

	text, isErr := rpcTool(t, endpoint, mint(scopeWrite), "write_note", map[string]any{"text": "hi"})
	require.False(t, isErr, text)
	text, isErr = rpcTool(t, endpoint, mint(scopeWrite), "list_notes", nil)
	require.False(t, isErr, text)
	assert.Contains(t, text, `"text":"hi"`)

	resp, body := rpc(t, endpoint, mint(scopeRead), "tools/call", "write_note", map[string]any{"text": "no"})
	assertStepUp(t, resp.StatusCode, resp.Header, body, base, scopeRead+" "+scopeWrite)
	resp, body = rpc(t, endpoint, mint("openid"), "tools/call", "list_notes", nil)
	assertStepUp(t, resp.StatusCode, resp.Header, body, base, scopeRead)
}

// TestSessionSecretSharedByReplicas runs three servers for one public URL:
// two share MCP_SESSION_SECRET, the third has none. A session (protocol
// 2025-11-25) opened on the first works on the second, but only for the
// user who opened it, and not on the third.
func TestSessionSecretSharedByReplicas(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	base := "http://" + addrs[0] // the URL the load balancer would have
	const secret = "MCP_SESSION_SECRET=0123456789abcdef0123456789abcdef"
	for i, addr := range addrs {
		env := []string{"DESCOPE_CONFIG_URL=" + ds.WellKnownURL(), "MCP_SERVER_URL=" + base, "ADDR=" + addr}
		if i < 2 {
			env = append(env, secret)
		}
		p := startNotes(t, childEnv(env...))
		p.waitPort(t, addr)
	}
	endpoint := func(i int) string { return "http://" + addrs[i] + "/mcp" }
	alice := ds.Mint(map[string]any{"sub": "U2alice000000000000000000000", "aud": base + "/mcp"})
	bob := ds.Mint(map[string]any{"sub": "U2bob000000000000000000000000", "aud": base + "/mcp"})

	// post sends one legacy request and returns the status and the
	// session ID the server answered with.
	post := func(i int, token, session, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, endpoint(i), strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set(server.HeaderKeySessionID, session)
			req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get(server.HeaderKeySessionID)
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + mcp.ProtocolVersion20251125 +
		`","capabilities":{},"clientInfo":{"name":"notes-test","version":"1"}}}`
	const list = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	status, session := post(0, alice, "", initialize)
	require.Equal(t, http.StatusOK, status)
	require.NotEmpty(t, session)

	status, _ = post(1, alice, session, list)
	assert.Equal(t, http.StatusOK, status, "a replica with the same secret accepts alice's session")
	status, _ = post(1, bob, session, list)
	assert.Equal(t, http.StatusNotFound, status, "bob cannot use alice's session")
	status, _ = post(0, bob, session, list)
	assert.Equal(t, http.StatusNotFound, status, "not even where it was opened")
	status, _ = post(2, alice, session, list)
	assert.Equal(t, http.StatusNotFound, status, "a server with another secret does not know the session")
}

// TestDevMode runs the binary with no Descope configuration and runs the
// curl command it prints.
func TestDevMode(t *testing.T) {
	addr := freeAddr(t)
	endpoint := "http://" + addr + "/mcp"
	p := startNotes(t, childEnv("ADDR="+addr, "MCP_SERVER_URL=http://"+addr))

	banner := p.waitLine(t, "notes: DEV MODE")
	assert.Contains(t, banner, "Do not use in production")
	assert.Equal(t, "notes: MCP endpoint   "+endpoint, p.waitLine(t, "notes: MCP endpoint"))
	full := lastField(p.waitLine(t, "notes: token (notes:read notes:write outbound.token.fetch):"))
	readOnly := lastField(p.waitLine(t, "notes: token (notes:read only):"))
	curlLine := strings.TrimSpace(p.waitLine(t, "  curl "))
	require.Contains(t, curlLine, full)

	// The printed command, as printed.
	status, body := runCurlLine(t, curlLine)
	assert.Equal(t, http.StatusOK, status)
	id := toolReply[identity](t, body)
	assert.Equal(t, devUser.Subject, id.Sub)
	assert.Equal(t, devTenant, id.CurrentTenant)
	assert.Equal(t, []string{scopeRead, scopeWrite, descope.ScopeOutboundTokenFetch}, id.Scopes)

	// The same command with the read-only token, calling write_note: the
	// transport refuses it, naming the scope to ask the user for.
	writeLine := replaceOnce(t, curlLine, "Mcp-Name: whoami", "Mcp-Name: write_note")
	writeLine = replaceOnce(t, writeLine, `"name":"whoami","arguments":{}`, `"name":"write_note","arguments":{"text":"hello"}`)
	status, header, body := runCurlLineHeaders(t, replaceOnce(t, writeLine, full, readOnly))
	assertStepUp(t, status, header, body, "http://"+addr, scopeWrite)

	// With the full token, it is saved.
	status, body = runCurlLine(t, writeLine)
	assert.Equal(t, http.StatusOK, status)
	var reply struct {
		Result mcp.CallToolResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	assert.False(t, reply.Result.IsError, string(body))
	assert.Equal(t, "saved", resultText(t, &reply.Result))

	// The dev user has reports.read in their tenant but is no admin.
	p.waitLine(t, "notes: tools:")
	assert.ElementsMatch(t, []string{"whoami", "list_notes", "write_note", "tenant_report", "github_profile"}, listTools(t, endpoint, full))
	text, isErr := rpcTool(t, endpoint, readOnly, "tenant_report", nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"tenant":"`+devTenant+`","your_notes":1}`, text)
	text, isErr = rpcTool(t, endpoint, full, "notes_stats", nil)
	assert.True(t, isErr)
	assert.Equal(t, auth.DeniedMessage, text)

	// Browser tools on loopback (MCP Inspector) may call it; other sites may not.
	for origin, want := range map[string]int{
		"http://localhost:6274": http.StatusOK, "http://127.0.0.1:6274": http.StatusOK,
		"http://" + addr: http.StatusOK, "http://evil.example": http.StatusForbidden,
	} {
		status, _, _ := runCurlLineHeaders(t, strings.Replace(curlLine, " -H ", " -H 'Origin: "+origin+"' -H ", 1))
		assert.Equal(t, want, status, "Origin %s", origin)
	}

	p.terminate(t)
}

// TestDevModeDPoPRequired: with DESCOPE_DPOP=required the banner says the
// printed bearer tokens are refused, they are (with a DPoP challenge), and
// the resource metadata tells clients bound tokens are required.
func TestDevModeDPoPRequired(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	p := startNotes(t, childEnv("ADDR="+addr, "MCP_SERVER_URL="+base, "DESCOPE_DPOP=required", "DESCOPE_DPOP_NONCES=true"))
	full := lastField(p.waitLine(t, "notes: token (notes:read notes:write outbound.token.fetch):"))
	assert.Contains(t, p.waitLine(t, "notes: DPoP is required"), "refused")

	resp, body := rpc(t, base+"/mcp", full, "tools/call", "whoami", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(body))
	assert.Equal(t, []string{`DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA", error="invalid_token", ` +
		`error_description="This endpoint accepts only DPoP-bound access tokens, sent with the DPoP scheme and a DPoP proof.", ` +
		`resource_metadata="` + base + `/.well-known/oauth-protected-resource/mcp"`}, resp.Header.Values("WWW-Authenticate"))

	prm, err := http.Get(base + "/.well-known/oauth-protected-resource/mcp")
	require.NoError(t, err)
	defer prm.Body.Close()
	var doc struct {
		Algs     []string `json:"dpop_signing_alg_values_supported"`
		Required bool     `json:"dpop_bound_access_tokens_required"`
	}
	require.NoError(t, json.NewDecoder(prm.Body).Decode(&doc))
	assert.True(t, doc.Required)
	assert.Contains(t, doc.Algs, "ES256")
	p.terminate(t)
}

func lastField(line string) string {
	f := strings.Fields(line)
	return f[len(f)-1]
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "%q in %q", old, s)
	return strings.Replace(s, old, new, 1)
}

// toolReply decodes the text of a tools/call reply as T.
func toolReply[T any](t *testing.T, body []byte) T {
	t.Helper()
	var reply struct {
		Result mcp.CallToolResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	require.False(t, reply.Result.IsError, string(body))
	var v T
	require.NoError(t, json.Unmarshal([]byte(resultText(t, &reply.Result)), &v))
	return v
}

// runCurlLine runs a printed curl command line with the real curl when
// there is one, and otherwise sends the same request with net/http. It
// returns the HTTP status and the body.
func runCurlLine(t *testing.T, line string) (int, []byte) {
	t.Helper()
	status, _, body := runCurlLineHeaders(t, line)
	return status, body
}

// runCurlLineHeaders is runCurlLine that also returns the response headers.
func runCurlLineHeaders(t *testing.T, line string) (int, http.Header, []byte) {
	t.Helper()
	args := shellWords(t, line)
	require.Equal(t, "curl", args[0])
	if curl, err := exec.LookPath("curl"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
		defer cancel()
		headerFile := filepath.Join(t.TempDir(), "headers")
		// -D saves the headers; -w appends the status on a line of its own.
		cmd := exec.CommandContext(ctx, curl, append(args[1:], "-D", headerFile, "-w", "\n%{http_code}")...)
		out, err := cmd.Output()
		require.NoError(t, err, "curl: %s", out)
		body, code, ok := cutLast(string(out), "\n")
		require.True(t, ok, "curl output %q", out)
		var status int
		_, err = fmt.Sscan(code, &status)
		require.NoError(t, err)
		raw, err := os.ReadFile(headerFile)
		require.NoError(t, err)
		return status, parseCurlHeaders(t, raw), []byte(body)
	}

	var url, data string
	header := http.Header{}
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "-s":
		case "-H":
			i++
			name, value, ok := strings.Cut(args[i], ":")
			require.True(t, ok, "header %q", args[i])
			header.Add(name, strings.TrimSpace(value))
		case "-d":
			i++
			data = args[i]
		default:
			require.Empty(t, url, "unexpected argument %q", args[i])
			url = args[i]
		}
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(data))
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, body
}

// parseCurlHeaders reads the headers curl -D saved: the last block, after
// any interim (1xx) responses.
func parseCurlHeaders(t *testing.T, raw []byte) http.Header {
	t.Helper()
	blocks := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(raw), "\r\n", "\n")), "\n\n")
	last := blocks[len(blocks)-1]
	_, fields, _ := strings.Cut(last, "\n") // drop the status line
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(fields + "\n\n")))
	h, err := tp.ReadMIMEHeader()
	require.NoError(t, err, "headers %q", raw)
	return http.Header(h)
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// shellWords splits a command line as a POSIX shell would, for the subset
// the banner uses: words separated by spaces, and single-quoted strings.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune(`"\$`+"`", r):
			t.Fatalf("shellWords: unquoted %q in %q", r, line)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	require.False(t, quoted, "unterminated quote in %q", line)
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestStartupErrors checks that a configuration mistake ends the process at
// once with one line on stderr.
func TestStartupErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })

	for _, tc := range []struct {
		name string
		env  []string
		want string // a part of the message
	}{
		{"not a Descope URL", []string{"DESCOPE_CONFIG_URL=https://example.com/nope"}, "Config.WellKnownURL"},
		{"garbage URL", []string{"DESCOPE_CONFIG_URL=garbage"}, "Config.WellKnownURL"},
		{"empty variable is not dev mode", []string{"DESCOPE_CONFIG_URL="}, "DESCOPE_CONFIG_URL"},
		{"bad project ID", []string{"DESCOPE_PROJECT_ID=not a project"}, "Config.ProjectID"},
		{"public http server URL", []string{"DESCOPE_PROJECT_ID=" + descopetest.DefaultProjectID, "MCP_SERVER_URL=http://notes.example.com"}, "Config.ServerURL"},
		{"dev mode on all interfaces", []string{"ADDR=0.0.0.0:0"}, "dev mode"},
		{"port in use", []string{"ADDR=" + busy.Addr().String(), "MCP_SERVER_URL=http://" + busy.Addr().String()}, "address already in use"},
		{"dev mode with public URL", []string{"ADDR=127.0.0.1:0", "MCP_SERVER_URL=https://notes.example.com"}, "dev mode"},
		{"short session secret", []string{"MCP_SESSION_SECRET=hunter2"}, "MCP_SESSION_SECRET"},
		{"GitHub API over plain http", []string{"DESCOPE_PROJECT_ID=" + descopetest.DefaultProjectID, "MCP_SERVER_URL=https://notes.example.com",
			"GITHUB_OUTBOUND_APP=github", "GITHUB_API_URL=http://api.github.com"}, "GITHUB_API_URL"},
		{"GitHub API not a URL", []string{"DESCOPE_PROJECT_ID=" + descopetest.DefaultProjectID, "MCP_SERVER_URL=https://notes.example.com",
			"GITHUB_OUTBOUND_APP=github", "GITHUB_API_URL=api.github.com"}, "GITHUB_API_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A free port unless the case says otherwise, so that the
			// configuration is what fails.
			env := append([]string{"ADDR=" + freeAddr(t)}, tc.env...)
			p := startNotes(t, childEnv(env...))
			code := p.wait(t)
			assert.NotEqual(t, 0, code, "exit code")
			stderr := p.stderrText()
			assert.True(t, strings.HasPrefix(stderr, "notes: "), "stderr %q", stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "stderr %q", stderr)
			assert.True(t, strings.HasSuffix(stderr, "\n"), "stderr %q", stderr)
			assert.Contains(t, stderr, tc.want)
			assert.NotContains(t, p.stdout(), "eyJ", "no token is printed")
		})
	}
}
