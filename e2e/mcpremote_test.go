//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMCPRemote drives mcp-remote (the stdio bridge desktop apps use for
// remote servers) as a stdio MCP server with JSON-RPC lines, against the
// example: it signs in through its browser (BROWSER, which GETs the
// authorization URL and follows the redirect to mcp-remote's loopback
// callback), whoami names the user with notes:read only, and write_note
// gets a 403 insufficient_scope that mcp-remote answers by authorizing
// again with notes:write and retrying the call. In both eras: with
// --protocol legacy (its default) it forwards the stdio client's
// 2025-11-25 initialize; with --protocol auto it speaks 2026-07-28.
func TestMCPRemote(t *testing.T) {
	clientsReady(t)
	endpoint := stepUpExample(t)
	for _, c := range []struct{ era, mode string }{{eraLegacy, "legacy"}, {eraModern, "auto"}} {
		t.Run(c.era, func(t *testing.T) {
			trace := filepath.Join(t.TempDir(), "trace.jsonl")
			p := startMCPRemote(t, endpoint, c.mode, trace)

			p.call(t, "initialize", map[string]any{
				"protocolVersion": eraLegacy,
				"capabilities":    map[string]any{},
				"clientInfo":      map[string]any{"name": "e2e-stdio", "version": "1.0.0"},
			})
			p.notify(t, "notifications/initialized")

			scopes := whoamiSub(t, p.tool(t, "whoami", nil))
			if strings.Join(scopes, " ") != scopeRead {
				t.Fatalf("the first grant has scopes %v, want only %s (DESCOPE_SCOPES_SUPPORTED)", scopes, scopeRead)
			}
			xs := readTrace(t, trace)
			checkFlow(t, xs, endpoint, c.era)
			mark := len(xs)

			if got := p.tool(t, toolWrite, map[string]any{"text": "from mcp-remote"}); got != "saved" {
				t.Fatalf("write_note after step-up answered %q, want saved", got)
			}
			scopes = whoamiSub(t, p.tool(t, "whoami", nil))
			if !strings.Contains(" "+strings.Join(scopes, " ")+" ", " "+scopeWrite+" ") {
				t.Fatalf("after step-up the token has scopes %v, want %s among them", scopes, scopeWrite)
			}
			checkStepUpTrace(t, readTrace(t, trace)[mark:], endpoint)
		})
	}
}

// TestMCPRemoteStepUpToTheWholeScopeList pins a limitation of mcp-remote
// 0.15.1, listed in README's troubleshooting: when the 403's scope is
// exactly the metadata's whole scopes_supported (here, with
// DESCOPE_REQUIRED_SCOPES=notes:read, write_note asks for "notes:read
// notes:write", which is all the example advertises with github_profile
// off), it re-authorizes
// with its old scope instead, and the call ends in -32001 Unauthorized.
// A version that fixes this makes the test fail; update the row then.
func TestMCPRemoteStepUpToTheWholeScopeList(t *testing.T) {
	clientsReady(t)
	endpoint := startExample(t, "DESCOPE_REQUIRED_SCOPES="+scopeRead, "GITHUB_OUTBOUND_APP=") + "/mcp"
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	p := startMCPRemote(t, endpoint, "legacy", trace)
	p.call(t, "initialize", map[string]any{
		"protocolVersion": eraLegacy,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "e2e-stdio", "version": "1.0.0"},
	})
	p.notify(t, "notifications/initialized")
	whoamiSub(t, p.tool(t, "whoami", nil))
	mark := len(readTrace(t, trace))

	code, msg := p.callError(t, "tools/call", map[string]any{"name": toolWrite, "arguments": map[string]any{"text": "x"}})
	if code != -32001 {
		t.Fatalf("write_note answered error %d %q; want mcp-remote's -32001 Unauthorized (its 0.15.1 limitation). "+
			"If it now steps up, update README's troubleshooting row and this test", code, msg)
	}
	xs := readTrace(t, trace)[mark:]
	var asked []string
	for _, x := range xs {
		if strings.HasSuffix(x.URL, "/authorize") {
			asked = append(asked, x.Scope)
		}
	}
	if len(asked) == 0 || slices.ContainsFunc(asked, func(s string) bool { return strings.Contains(s, scopeWrite) }) {
		t.Fatalf("after the 403 mcp-remote asked for scopes %q; want only its old %s:%s", asked, scopeRead, traceString(xs))
	}
}

// checkStepUpTrace: a tools/call of write_note answered 403 with the
// exact insufficient_scope challenge (scope notes:write), then an
// authorization asking for notes:write for the endpoint, a token, and the
// same call served.
func checkStepUpTrace(t *testing.T, xs []exchange, endpoint string) {
	t.Helper()
	prm := strings.TrimSuffix(endpoint, "/mcp") + "/.well-known/oauth-protected-resource/mcp"
	challenge := `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="` +
		scopeWrite + `", resource_metadata="` + prm + `"`
	stages := []stage{
		{"403 insufficient_scope", func(x exchange) bool {
			return x.URL == endpoint && x.Status == 403 && strings.HasPrefix(x.Challenge, challenge)
		}},
		{"authorization asking for notes:write", func(x exchange) bool {
			return strings.HasSuffix(x.URL, "/authorize") && x.Status == 302 && x.Resource == endpoint &&
				strings.Contains(" "+x.Scope+" ", " "+scopeWrite+" ")
		}},
		{"token exchange", func(x exchange) bool {
			return x.Method == "POST" && strings.HasSuffix(x.URL, "/token") && x.Status == 200
		}},
		{"the call served", func(x exchange) bool {
			return x.URL == endpoint && x.Method == "POST" && x.Status == 200 && x.Token != ""
		}},
	}
	i := 0
	for _, st := range stages {
		j := -1
		for k, x := range xs[i:] {
			if st.match(x) {
				j = k
				break
			}
		}
		if j < 0 {
			t.Fatalf("step-up stage %q is missing after the previous ones; the client sent:%s", st.name, traceString(xs))
		}
		i += j + 1
	}
}

// mcpRemote is a running mcp-remote proxy and the lines it prints.
type mcpRemote struct {
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	nextID int
}

// startMCPRemote starts mcp-remote for endpoint with its loopback callback
// on a free port and its state in a scratch directory.
func startMCPRemote(t *testing.T, endpoint, protocol, trace string) *mcpRemote {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(clientsNode, filepath.Join(clientsAbs, "node_modules", "mcp-remote", "dist", "proxy.js"),
		endpoint, port, "--host", "127.0.0.1", "--protocol", protocol)
	cmd.Dir = t.TempDir()
	cmd.Env = clientEnv(t, trace, "MCP_REMOTE_CONFIG_DIR="+t.TempDir())
	p := &mcpRemote{lines: make(chan string, 16), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		wg.Wait()
		if t.Failed() {
			t.Logf("mcp-remote stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *mcpRemote) send(t *testing.T, msg map[string]any) {
	t.Helper()
	msg["jsonrpc"] = "2.0"
	b, _ := json.Marshal(msg)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("write to mcp-remote: %v", err)
	}
}

func (p *mcpRemote) notify(t *testing.T, method string) {
	t.Helper()
	p.send(t, map[string]any{"method": method})
}

// call sends a request and returns its result, failing on an error answer.
func (p *mcpRemote) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	res, code, msg := p.request(t, method, params)
	if res == nil {
		t.Fatalf("%s: error %d %s; mcp-remote stderr:\n%s", method, code, msg, p.stderr.String())
	}
	return res
}

// callError sends a request that must be answered with an error, and
// returns it.
func (p *mcpRemote) callError(t *testing.T, method string, params any) (int, string) {
	t.Helper()
	res, code, msg := p.request(t, method, params)
	if res != nil {
		t.Fatalf("%s: answered %s, want an error", method, res)
	}
	return code, msg
}

// request sends a request and returns its result, or its error.
func (p *mcpRemote) request(t *testing.T, method string, params any) (json.RawMessage, int, string) {
	t.Helper()
	p.nextID++
	id := p.nextID
	p.send(t, map[string]any{"id": id, "method": method, "params": params})
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s: mcp-remote exited; stderr:\n%s", method, p.stderr.String())
			}
			var msg struct {
				ID     *int            `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal([]byte(line), &msg) != nil || msg.ID == nil || *msg.ID != id {
				continue // a notification, or not JSON-RPC
			}
			if msg.Error != nil {
				return nil, msg.Error.Code, msg.Error.Message
			}
			return msg.Result, 0, ""
		case <-timeout:
			t.Fatalf("%s: no answer from mcp-remote in 60s; stderr:\n%s", method, p.stderr.String())
		}
	}
}

// tool calls a tool and returns the text of its result, failing on a tool
// error.
func (p *mcpRemote) tool(t *testing.T, name string, args map[string]any) string {
	t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	raw := p.call(t, "tools/call", map[string]any{"name": name, "arguments": args})
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Content) == 0 {
		t.Fatalf("tools/call %s: result %s (%v)", name, raw, err)
	}
	if res.IsError {
		t.Fatalf("tools/call %s: tool error %q", name, res.Content[0].Text)
	}
	return res.Content[0].Text
}
