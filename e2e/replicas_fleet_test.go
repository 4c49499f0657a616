package e2e

// This file runs replicas of the example server as their own processes, all
// configured against one fake Descope in the test process (not dev mode,
// which would give each its own issuer) and sharing MCP_SESSION_SECRET,
// with nginx in front of them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// fleetSecret is the MCP_SESSION_SECRET the replicas share.
const fleetSecret = "e2e replicas: one session secret shared by all"

// replica is one example server process.
type replica struct {
	addr string // 127.0.0.1:PORT it listens on
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer // its stdout and stderr
}

// startReplica runs the example on a loopback port, trusting the fake
// Descope ds, with publicURL as MCP_SERVER_URL and secret as
// MCP_SESSION_SECRET. It returns once the replica serves and has loaded the
// fake's keys, and kills it when the test ends.
func startReplica(t testing.TB, ds *descopetest.Server, publicURL, secret string) *replica {
	t.Helper()
	bin := exampleBinary(t)
	r := &replica{addr: freeLoopbackAddr(t), done: make(chan struct{})}
	r.cmd = exec.Command(bin)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "DESCOPE_") && !strings.HasPrefix(name, "MCP_") && name != "ADDR" {
			r.cmd.Env = append(r.cmd.Env, kv)
		}
	}
	r.cmd.Env = append(r.cmd.Env,
		"ADDR="+r.addr,
		"MCP_SERVER_URL="+publicURL,
		"DESCOPE_CONFIG_URL="+ds.WellKnownURL(),
		"MCP_SESSION_SECRET="+secret,
	)
	// Both markers must appear: the banner says it serves, the log line
	// that it holds the fake's keys (before that it answers 503).
	served, keys := make(chan struct{}), make(chan struct{})
	r.cmd.Stdout = &markerWriter{r: r, marker: "notes: MCP endpoint", seen: served}
	r.cmd.Stderr = &markerWriter{r: r, marker: "signing keys loaded", seen: keys}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start replica: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.kill)
	timeout := time.After(30 * time.Second)
	for _, ch := range []chan struct{}{served, keys} {
		select {
		case <-ch:
		case <-r.done:
			t.Fatalf("replica on %s exited at start: %s", r.addr, r.log())
		case <-timeout:
			t.Fatalf("replica on %s did not start: %s", r.addr, r.log())
		}
	}
	return r
}

// kill ends the replica at once, as a crash would, and waits for it.
func (r *replica) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

func (r *replica) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// markerWriter collects a replica's output and closes seen when a line
// holding marker was written.
type markerWriter struct {
	r      *replica
	marker string
	seen   chan struct{}
	once   sync.Once
	line   []byte
}

func (w *markerWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	w.r.out.Write(p)
	w.r.mu.Unlock()
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if bytes.Contains(w.line[:i], []byte(w.marker)) {
			w.once.Do(func() { close(w.seen) })
		}
		w.line = w.line[i+1:]
	}
	return len(p), nil
}

// fleet is one fake Descope, replicas of the example trusting it, and nginx
// in front of them, whose URL is every replica's MCP_SERVER_URL.
type fleet struct {
	ds       *descopetest.Server
	lb       *nginxProxy
	replicas []*replica
	mcpURL   string // the resource URL, at nginx
	prmURL   string
	as       asMetadata
}

// newFleet starts n replicas sharing fleetSecret behind nginx.
func newFleet(t testing.TB, n int) *fleet {
	t.Helper()
	nginxBinary(t) // skip before building anything
	ds := descopetest.NewServer(descopetest.WithScopesSupported(fleetScopeRead, fleetScopeWrite))
	t.Cleanup(ds.Close)
	listen := freeLoopbackAddr(t)
	public := "http://" + listen
	f := &fleet{ds: ds, mcpURL: public + "/mcp", prmURL: public + "/.well-known/oauth-protected-resource/mcp"}
	// As in the Descope console: tokens for which the client names no
	// resource are for the public endpoint.
	ds.SetMCPServerURL(f.mcpURL)
	var upstreams []string
	for range n {
		r := startReplica(t, ds, public, fleetSecret)
		f.replicas = append(f.replicas, r)
		upstreams = append(upstreams, r.addr)
	}
	f.lb = startNginx(t, listen, upstreams)

	resp, err := http.Get(ds.WellKnownURL())
	if err != nil {
		t.Fatalf("fake Descope metadata: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&f.as); err != nil {
		t.Fatalf("fake Descope metadata: %v", err)
	}
	return f
}

// The example's scopes, which the fake Descope advertises.
const (
	fleetScopeRead  = "notes:read"
	fleetScopeWrite = "notes:write"
)

// env is what the client runners need: the endpoint at nginx and the fake
// Descope. Its journal starts empty; nothing in the test process sits
// between nginx and the replicas, so a run fills it with the client's own
// record of what nginx answered (see journalFromTrace).
func (f *fleet) env() *env {
	return &env{ds: f.ds, mcpURL: f.mcpURL, prmURL: f.prmURL, as: f.as, journal: &journal{}}
}

// name says which replica an address is, for messages: "replica 2 (127.0.0.1:P)".
func (f *fleet) name(addr string) string {
	for i, r := range f.replicas {
		if r.addr == addr {
			return fmt.Sprintf("replica %d (%s)", i+1, addr)
		}
	}
	return addr
}

// journalFromTrace copies a client's record of its exchanges into a journal.
func journalFromTrace(j *journal, xs []exchange) {
	for i := range xs {
		x := xs[i]
		j.add(&x)
	}
}

// rawCall is one JSON-RPC request sent by hand, outside any client.
type rawCall struct {
	method   string // POST when empty
	url      string // where: nginx's endpoint or one replica's
	token    string
	session  string
	protocol string
	headers  map[string]string // more headers, such as 2026-07-28's Mcp-Method
	body     string
}

// rawAnswer is what came back.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// send posts the request and reads the answer.
func (c rawCall) send(ctx context.Context, hc *http.Client) (rawAnswer, error) {
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url, strings.NewReader(c.body))
	if err != nil {
		return rawAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.protocol != "" {
		req.Header.Set("Mcp-Protocol-Version", c.protocol)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return rawAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(body)}, err
}

// JSON-RPC bodies sent by hand.
const (
	rawInitializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e-replicas","version":"1.0.0"}}}`
	rawWhoamiBody     = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	// rawWhoamiModernParams carry what protocol 2026-07-28 asks of every
	// request in place of a session.
	rawWhoamiModernParams = `{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`
	rawWhoamiModernBody   = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":` + rawWhoamiModernParams + `}`
)

// rawWhoamiModernHeaders are the headers protocol 2026-07-28 asks of a
// tools/call besides Mcp-Protocol-Version.
var rawWhoamiModernHeaders = mcp.StandardHeaders(eraModern, "tools/call", json.RawMessage(rawWhoamiModernParams))

// procCPUTime is the CPU time (user and system) a process has used so far,
// from /proc/PID/stat; with children, that of its children too (nginx's
// workers, which it has not waited for, are found by their parent).
func procCPUTime(pid int, children bool) (time.Duration, error) {
	ticks, err := procStatTicks(pid)
	if err != nil || !children {
		return procTicksToDuration(ticks), err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if parent, err := procStatField(child, 4); err == nil && parent == int64(pid) {
			if t, err := procStatTicks(child); err == nil {
				ticks += t
			}
		}
	}
	return procTicksToDuration(ticks), nil
}

// procStatTicks is utime + stime (fields 14 and 15 of /proc/PID/stat).
func procStatTicks(pid int) (int64, error) {
	u, err := procStatField(pid, 14)
	if err != nil {
		return 0, err
	}
	s, err := procStatField(pid, 15)
	return u + s, err
}

// procStatField reads field n (1-based, as proc(5) numbers them) of
// /proc/PID/stat as an integer. The command name, field 2, may hold spaces,
// so fields are counted from the last ')'.
func procStatField(pid, n int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	fields := strings.Fields(string(b[i+1:]))
	if n < 3 || n-3 >= len(fields) {
		return 0, fmt.Errorf("/proc stat has no field %d", n)
	}
	return strconv.ParseInt(fields[n-3], 10, 64)
}

// procTicksToDuration converts clock ticks. /proc counts in USER_HZ, which
// Linux fixes at 100 on every architecture it exports to user space.
func procTicksToDuration(ticks int64) time.Duration {
	return time.Duration(ticks) * 10 * time.Millisecond
}

// pollUntil polls cond every few milliseconds until it holds or the
// deadline passes. It is for conditions only another process's files show
// (nginx's access log), which offer nothing to wait on.
func pollUntil(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
