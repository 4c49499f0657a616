//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInspectorWeb drives the MCP Inspector's web UI in headless Chromium
// against the example: the connect switch signs in (the page goes to the
// authorization endpoint and back to the Inspector's callback), whoami
// from the Tools tab names the user with notes:read only, and write_note
// opens the Inspector's step-up dialog, whose Authorize button
// re-authorizes with notes:write; the tool is then run again, as a person
// would, and saves the note. In each protocol era the Inspector speaks
// (--protocol-era legacy: 2025-11-25; modern: 2026-07-28).
//
// A screenshot of the last tool result is written for every run; it is
// kept, and its path logged, when the test fails, or in
// E2E_SCREENSHOT_DIR when that is set.
func TestInspectorWeb(t *testing.T) {
	clientsReady(t)
	chromium := chromiumBinary(t)
	endpoint := stepUpExample(t)
	for _, era := range []struct{ version, flag string }{{eraLegacy, "legacy"}, {eraModern, "modern"}} {
		t.Run(era.version, func(t *testing.T) {
			trace := filepath.Join(t.TempDir(), "trace.jsonl")
			pageURL := startInspector(t, endpoint, era.flag, trace)
			shot := screenshotPath(t, "inspector-"+era.flag)

			var res inspectorResult
			stderr := runNode(t, clientEnv(t, filepath.Join(t.TempDir(), "driver.jsonl")), &res, "inspector.mjs", pageURL, mustJSON(map[string]any{
				"chromium":   chromium,
				"screenshot": shot,
				"tools": []map[string]any{
					{"name": toolWhoami},
					{"name": toolWrite, "text": "from the Inspector"},
					{"name": toolWhoami},
				},
			}))
			if !res.OK {
				t.Fatalf("the Inspector driver stopped at %q: %s\nstderr:\n%s", res.Step, res.Error, stderr)
			}
			if res.Protocol != era.version {
				t.Fatalf("the Inspector shows MCP %s, want %s", res.Protocol, era.version)
			}
			if len(res.Calls) != 3 {
				t.Fatalf("%d tool results, want 3: %+v", len(res.Calls), res.Calls)
			}
			if scopes := whoamiSub(t, res.Calls[0].Text); strings.Join(scopes, " ") != scopeRead {
				t.Fatalf("the first grant has scopes %v, want only %s", scopes, scopeRead)
			}
			if res.Calls[1].Text != "saved" || res.StepUps != 1 {
				t.Fatalf("write_note answered %q after %d step-ups, want saved after 1", res.Calls[1].Text, res.StepUps)
			}
			if scopes := whoamiSub(t, res.Calls[2].Text); !strings.Contains(strings.Join(scopes, " "), scopeWrite) {
				t.Fatalf("after step-up the token has scopes %v, want %s among them", scopes, scopeWrite)
			}
			checkAuthorizations(t, res.Authorizations, endpoint, 2)
			if a := res.Authorizations; len(a) == 2 && (a[0].Scope != scopeRead || !strings.Contains(a[1].Scope, scopeWrite)) {
				t.Errorf("authorizations asked for %q, then %q; want %s, then %s among others", a[0].Scope, a[1].Scope, scopeRead, scopeWrite)
			}
			// The Inspector's backend makes the OAuth and MCP requests;
			// the page only visits the authorization endpoint.
			xs := readTrace(t, trace)
			checkFlowWithoutAuthorize(t, xs, endpoint, era.version)
			checkStepUpWithoutAuthorize(t, xs, endpoint)
		})
	}
}

// inspectorResult is what inspector.mjs prints.
type inspectorResult struct {
	OK       bool   `json:"ok"`
	Step     string `json:"step"`
	Error    string `json:"error"`
	Protocol string `json:"protocol"`
	Calls    []struct {
		Name string `json:"name"`
		Text string `json:"text"`
	} `json:"calls"`
	StepUps        int             `json:"stepUps"`
	Authorizations []authorization `json:"authorizations"`
}

// checkFlowWithoutAuthorize is checkFlow for a client whose authorization
// request is made by a browser, not by the process traced.
func checkFlowWithoutAuthorize(t *testing.T, xs []exchange, endpoint, era string) {
	t.Helper()
	xs = append(xs, exchange{Method: "GET", URL: "browser/authorize", Status: 302, Resource: endpoint})
	checkFlow(t, xs, endpoint, era)
}

// checkStepUpWithoutAuthorize is checkStepUpTrace for the same kind of
// client.
func checkStepUpWithoutAuthorize(t *testing.T, xs []exchange, endpoint string) {
	t.Helper()
	for i, x := range xs {
		if x.Status == 403 && x.URL == endpoint {
			rest := append([]exchange{x, {Method: "GET", URL: "browser/authorize", Status: 302, Resource: endpoint, Scope: scopeWrite}}, xs[i+1:]...)
			checkStepUpTrace(t, rest, endpoint)
			return
		}
	}
	t.Fatalf("the MCP server never answered 403; the Inspector sent:%s", traceString(xs))
}

// chromiumBinary finds Debian's chromium. Without it the test is skipped,
// or fails when CI=true.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found, and CI=true requires it (apt-get install chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium)")
	return ""
}

// screenshotPath is where the driver writes its screenshot: in
// E2E_SCREENSHOT_DIR if set, else in a directory that is removed when the
// test passes and kept, with its path logged, when it fails.
func screenshotPath(t *testing.T, name string) string {
	t.Helper()
	if dir := os.Getenv("E2E_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, name+".png")
	}
	dir, err := os.MkdirTemp("", "e2e-screenshot-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshot of the last tool result: %s", path)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return path
}

// startInspector starts the Inspector's web UI for endpoint on free ports
// with its secrets in memory, and returns the page URL (with its API token).
func startInspector(t *testing.T, endpoint, era, trace string) string {
	t.Helper()
	port, sandbox := freePort(t), freePort(t)
	const token = "e2e-inspector-token"
	cmd := exec.Command(clientsNode, filepath.Join(clientsAbs, "node_modules", "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js"),
		"--web", "--transport", "http", "--server-url", endpoint, "--protocol-era", era)
	cmd.Dir = t.TempDir()
	cmd.Env = clientEnv(t, trace,
		"MCP_INSPECTOR_API_TOKEN="+token,
		"MCP_AUTO_OPEN_ENABLED=false",
		"MCP_INSPECTOR_SECRET_STORE=memory",
		"CLIENT_PORT="+port,
		"MCP_SANDBOX_PORT="+sandbox,
	)
	out := &lockedBuffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopProcess(cmd, 5*time.Second)
		if t.Failed() {
			t.Logf("Inspector output:\n%s", out.String())
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		up := false
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
			if !up && strings.Contains(sc.Text(), "is up and running") {
				up = true
				ready <- true
			}
		}
		if !up {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("the Inspector exited before serving:\n%s", out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the Inspector did not start:\n%s", out.String())
	}
	return "http://127.0.0.1:" + port + "/?MCP_INSPECTOR_API_TOKEN=" + token
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeLoopbackAddr(t))
	return port
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
