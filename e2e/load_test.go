//go:build linux

package e2e

// BenchmarkOperatorLoad measures the library the way an operator sees it:
// the server as its own process, many MCP sessions on keep-alive
// connections, and the server's CPU time read from /proc. It reads
// /proc/PID/stat and pins processes to CPUs, hence Linux only.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// The load's shape. The cold server's token cache is smaller than the cold
// pool, and each session walks its share of the pool in order, so a token
// comes back only after about loadColdTokens other calls, long after the
// cache (which drops the entry nearest expiry, here the oldest) forgot it:
// every cold call verifies a signature.
const (
	loadSessions      = 32
	loadUsers         = 8 // callers; session c belongs to user c % loadUsers
	loadColdTokens    = 5000
	loadColdCacheSize = 1000
	loadRounds        = 5               // LOADBENCH_ROUNDS overrides
	loadRunTime       = 2 * time.Second // per variant and round; LOADBENCH_RUN overrides
	loadTurns         = 8               // turns per variant and round; LOADBENCH_TURNS overrides
	loadWarmup        = 300 * time.Millisecond
)

// Environment knobs, none needed by make bench:
//
//	LOADBENCH_ROUNDS      rounds (default 5)
//	LOADBENCH_RUN         length of each measured run (default 2s)
//	LOADBENCH_TURNS       turns each run is cut into (default 8)
//	LOADBENCH_PIN=off     do not split the CPUs between server and client
//	LOADBENCH_PROFILE_DIR write each server's CPU profile there
//	                      (protected-hot.pprof, protected-cold.pprof, unprotected.pprof)
//	LOADBENCH_PROTECTED_FLAGS more flags for the protected servers: -no-policy
//	                      to see what the Policy costs, -passthrough to put in
//	                      their place the least any middleware costs
//	LOADBENCH_ONLY        measure only the pairs named, as "era tokens" items
//	                      separated by commas ("sessions hot,sessionless hot"),
//	                      so that a profile covers one kind of call

// loadScope and loadRoles are claims every token carries; whoami
// returns them, and the unprotected server's fixed reply has their size.
const loadScope = "notes:read"

var loadRoles = []string{"reader"}

func loadSubject(user int) string { return fmt.Sprintf("U2loadbench%017d", user) }

type loadEra struct{ name, version string }

var loadEras = []loadEra{{"sessions", eraLegacy}, {"sessionless", eraModern}}

// Indexes of the two token pools.
const (
	loadHot  = 0
	loadCold = 1
)

var loadTemps = []string{"hot", "cold"}

// BenchmarkOperatorLoad builds e2e/loadbench/server, starts it three times
// as its own process (protected with the default token cache, protected
// with a cache smaller than the cold pool, and unprotected), and has 32
// concurrent MCP sessions call tools/call whoami on keep-alive connections,
// in both protocol eras: 2025-11-25 (initialize, notifications/initialized,
// Mcp-Session-Id) and the sessionless 2026-07-28. Hot: 8 tokens, one per
// caller, always cache hits. Cold: 5,000 tokens, so every call verifies a
// signature. The unprotected server gets the very same requests, tokens
// included, and ignores them.
//
// Each round runs every variant for a fixed time, a protected run and its
// unprotected twin taking turns of an eighth of it (which goes first
// alternates), so that a machine whose speed drifts slows both alike; the
// pairs come in an order that rotates from round to round. Per variant it
// reports the median over the rounds (and min–max in the table) of req/s,
// the server's CPU time per call (utime+stime from /proc/PID/stat), and its
// allocations per call (runtime.MemStats from the server's debug port); per
// pair the medians of the per-round protected/unprotected ratios. Nothing here is asserted on
// time: a run fails only when a call does.
//
// With two CPUs or more the server is pinned to the first half of them and
// the client to the rest, so that the client cannot take the server's CPU
// (the server's GOMAXPROCS follows); LOADBENCH_PIN=off turns that off.
func BenchmarkOperatorLoad(b *testing.B) {
	rounds := loadEnvInt(b, "LOADBENCH_ROUNDS", loadRounds)
	runTime := loadEnvDuration(b, "LOADBENCH_RUN", loadRunTime)
	turns := loadEnvInt(b, "LOADBENCH_TURNS", loadTurns)
	tick := clockTicks(b)

	bin := buildLoadServer(b)
	ds := descopetest.NewServer()
	b.Cleanup(ds.Close)

	serverCPUs, clientCPUs := splitCPUs(b)

	plain := startLoadServer(b, bin, ds, "unprotected", serverCPUs, "-unprotected")
	plain.anyCaller = true
	extra := strings.Fields(os.Getenv("LOADBENCH_PROTECTED_FLAGS"))
	guardedHot := startLoadServer(b, bin, ds, "protected-hot", serverCPUs, extra...)
	guardedCold := startLoadServer(b, bin, ds, "protected-cold", serverCPUs,
		append([]string{"-token-cache-size", strconv.Itoa(loadColdCacheSize)}, extra...)...)
	if slices.Contains(extra, "-passthrough") {
		guardedHot.anyCaller, guardedCold.anyCaller = true, true
	}

	// The pools, minted for their protected server's resource URL; the
	// unprotected server is sent the same ones.
	pools := [2][][]string{
		loadHot:  mintPool(ds, guardedHot.url, loadUsers),
		loadCold: mintPool(ds, guardedCold.url, loadColdTokens),
	}
	guarded := [2]*loadServer{loadHot: guardedHot, loadCold: guardedCold}
	// Pinned only now, so that minting had every CPU.
	if clientCPUs != nil {
		pinProcess(b, clientCPUs)
	}

	// Sessions, and a check of every variant: the reply is the caller's, of
	// the same size everywhere.
	sizes := map[string]int{}
	for _, era := range loadEras {
		for temp := range loadTemps {
			for _, s := range []*loadServer{plain, guarded[temp]} {
				if era.version == eraLegacy && s.sessions[temp] == nil {
					s.openSessions(b, temp, pools[temp])
				}
				n := s.checkWhoami(b, era, temp, pools[temp])
				sizes[fmt.Sprintf("%s %s %s", s.name, era.name, loadTemps[temp])] = n
				s.run(b, era, temp, pools[temp], loadWarmup)
			}
		}
	}
	size := sizes[fmt.Sprintf("unprotected %s hot", loadEras[0].name)]
	for _, n := range sizes {
		if n != size {
			b.Fatalf("whoami replies differ in size between variants: %v", sizes)
		}
	}
	b.Logf("servers: GOMAXPROCS %d, on CPUs %s; client on CPUs %s; whoami replies with %d bytes of text in every variant",
		plain.procs, cpuList(serverCPUs), cpuList(clientCPUs), size)
	for _, s := range []*loadServer{plain, guardedHot, guardedCold} {
		s.dialsAfterWarmup = s.dials.Load()
	}

	type runKey struct {
		era, temp int
		protected bool
	}
	type pair struct{ era, temp int }
	var pairs []pair
	only := loadOnly(b)
	for e, era := range loadEras {
		for temp, tempName := range loadTemps {
			if only == nil || only[era.name+" "+tempName] {
				pairs = append(pairs, pair{e, temp})
			}
		}
	}
	results := map[runKey][]loadResult{}
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		// The two runs of a pair follow each other, the one or the other
		// first in turn; the pairs' order rotates, so that no variant
		// always follows the garbage another one left behind.
		for k := range pairs {
			pr := pairs[(r+k)%len(pairs)]
			// Within the round the twins take turns, so that both meet
			// the machine as it is over the same seconds; a round's
			// result for a variant is the sum of its turns.
			var sum [2]loadResult
			for j := range turns {
				for _, protected := range []bool{(r+j)%2 == 1, (r+j)%2 == 0} {
					s := plain
					if protected {
						s = guarded[pr.temp]
					}
					sum[btoi(protected)].add(s.run(b, loadEras[pr.era], pr.temp, pools[pr.temp], runTime/time.Duration(turns)))
				}
			}
			for protected, res := range sum {
				key := runKey{pr.era, pr.temp, protected == 1}
				results[key] = append(results[key], res)
			}
		}
	}
	b.StopTimer()

	// One line per pair: the testing package keeps only the first ten
	// lines a benchmark logs.
	tw := tabwriter.NewWriter(&tableWriter{b: b}, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "era\ttokens\treq/s unprotected\treq/s protected\tratio\tserver CPU µs/call unprotected\tprotected\tratio\t"+
		"allocs/call\tKB/call\tserver busy\tclient CPU µs/call\tothers on server CPUs\t\n")
	for e, era := range loadEras {
		for temp, tempName := range loadTemps {
			u, p := results[runKey{e, temp, false}], results[runKey{e, temp, true}]
			if len(p) == 0 {
				continue // not measured (LOADBENCH_ONLY)
			}
			cpu := func(x loadResult) float64 { return x.cpuPerCall(tick) }
			client := func(x loadResult) float64 { return x.clientCPUPerCall(tick) }
			busy := func(x loadResult) float64 { return 100 * x.busy(tick, plain.procs) }
			foreign := func(x loadResult) float64 { return x.foreign(tick, plain.procs) }
			// Per-round ratios: the two runs of a round met the same
			// machine.
			ratio := func(f func(loadResult) float64) stat {
				v := make([]float64, len(p))
				for i := range p {
					v[i] = f(p[i]) / f(u[i])
				}
				return spreadOf(v)
			}
			both := func(f func(loadResult) float64, format string) string {
				return fmt.Sprintf(format+" → "+format, spread(u, f).med, spread(p, f).med)
			}
			rr, cr := ratio(loadResult.rate), ratio(cpu)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				era.version, tempName,
				spread(u, loadResult.rate).format("%.0f"), spread(p, loadResult.rate).format("%.0f"), rr.format("%.3f"),
				spread(u, cpu).format("%.1f"), spread(p, cpu).format("%.1f"), cr.format("%.3f"),
				both(loadResult.allocsPerCall, "%.0f"), both(func(x loadResult) float64 { return x.bytesPerCall() / 1024 }, "%.1f"),
				both(busy, "%.0f%%"), both(client, "%.0f"), percent(max(spread(u, foreign).hi, spread(p, foreign).hi)))
			for _, v := range []struct {
				name string
				rs   []loadResult
			}{{"unprotected", u}, {"protected", p}} {
				label := fmt.Sprintf("%s-%s-%s", tempName, era.name, v.name)
				b.ReportMetric(spread(v.rs, loadResult.rate).med, label+"-req/s")
				b.ReportMetric(spread(v.rs, cpu).med, label+"-cpu-µs/call")
				b.ReportMetric(spread(v.rs, loadResult.allocsPerCall).med, label+"-allocs/call")
			}
			label := fmt.Sprintf("%s-%s", tempName, era.name)
			b.ReportMetric(rr.med, label+"-req/s-protected/unprotected")
			b.ReportMetric(cr.med, label+"-cpu-protected/unprotected")
		}
	}
	_ = tw.Flush()
	worst := 0.0
	for _, rs := range results {
		worst = max(worst, spread(rs, func(x loadResult) float64 { return x.foreign(tick, plain.procs) }).hi)
	}
	if worst > 0.10 {
		b.Logf("warning: other work took up to %.0f%% of the server's CPUs in a run: req/s then measures the machine's load; "+
			"CPU µs/call and allocations still compare, the former somewhat inflated", 100*worst)
	}
	var redials []string
	for _, s := range []*loadServer{plain, guardedHot, guardedCold} {
		if n := s.dials.Load() - s.dialsAfterWarmup; n > 0 {
			redials = append(redials, fmt.Sprintf("%s %d", s.name, n))
		}
	}
	b.Logf("%d rounds of %v per variant in %d turns: medians (min–max) over the rounds; ratios protected/unprotected are "+
		"of the same round; CPU in ticks of 1/%d s; new connections during the rounds: %s",
		rounds, runTime, turns, tick, cmp.Or(strings.Join(redials, ", "), "none"))
	b.ReportMetric(0, "ns/op")
}

// tableWriter sends each line of the table to b.Log.
type tableWriter struct {
	b   *testing.B
	buf []byte
}

func (w *tableWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.b.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// loadResult is one measured run of one variant.
type loadResult struct {
	calls      int
	elapsed    time.Duration
	cpuTicks   int64 // server utime+stime
	clientTick int64 // this process's utime+stime
	// others is the time the server's CPUs spent on anything but the
	// server (other processes, and the kernel's own work); -1 when the
	// server is not pinned.
	others  int64
	mallocs uint64
	bytes   uint64
}

// add sums two runs of one variant into one; others stays -1 once a run
// had it -1 (the zero loadResult, before the first run, has 0).
func (r *loadResult) add(o loadResult) {
	others := r.others + o.others
	if r.others < 0 || o.others < 0 {
		others = -1
	}
	*r = loadResult{calls: r.calls + o.calls, elapsed: r.elapsed + o.elapsed, cpuTicks: r.cpuTicks + o.cpuTicks,
		clientTick: r.clientTick + o.clientTick, others: others, mallocs: r.mallocs + o.mallocs, bytes: r.bytes + o.bytes}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r loadResult) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }
func (r loadResult) cpuPerCall(tick int64) float64 {
	return float64(r.cpuTicks) * 1e6 / float64(tick) / float64(r.calls)
}
func (r loadResult) clientCPUPerCall(tick int64) float64 {
	return float64(r.clientTick) * 1e6 / float64(tick) / float64(r.calls)
}
func (r loadResult) allocsPerCall() float64 { return float64(r.mallocs) / float64(r.calls) }
func (r loadResult) bytesPerCall() float64  { return float64(r.bytes) / float64(r.calls) }

// foreign is the share of the server's CPUs that went to others.
func (r loadResult) foreign(tick int64, procs int) float64 {
	if r.others < 0 {
		return -1
	}
	return float64(r.others) / float64(tick) / r.elapsed.Seconds() / float64(procs)
}

// busy is the share of the server's CPUs it used during the run: near 1,
// the server was the bottleneck, as it should be.
func (r loadResult) busy(tick int64, procs int) float64 {
	return float64(r.cpuTicks) / float64(tick) / r.elapsed.Seconds() / float64(procs)
}

func cpuList(cpus []int) string {
	if cpus == nil {
		return "any"
	}
	return strings.Trim(fmt.Sprint(cpus), "[]")
}

func percent(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("≤%.0f%%", 100*v)
}

type stat struct{ med, lo, hi float64 }

// format prints the median and the spread: "12.3 (11.9–13.0)".
func (s stat) format(verb string) string {
	return fmt.Sprintf(verb+" ("+verb+"–"+verb+")", s.med, s.lo, s.hi)
}

func spreadOf(v []float64) stat {
	v = slices.Clone(v)
	slices.Sort(v)
	return stat{med: (v[(len(v)-1)/2] + v[len(v)/2]) / 2, lo: v[0], hi: v[len(v)-1]}
}

func spread(rs []loadResult, f func(loadResult) float64) stat {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return spreadOf(v)
}

// loadServer is one running server process and its 32 clients.
type loadServer struct {
	name  string
	cmd   *exec.Cmd
	url   string // the MCP endpoint, also the tokens' aud
	debug string // the debug listener
	procs int    // its GOMAXPROCS
	cpus  []int  // the CPUs it is pinned to; nil: not pinned
	// anyCaller: it checks no token, and its whoami reports the fixed caller
	anyCaller bool
	clients   [loadSessions]*loadClient
	// sessions[temp][c] is session c's Mcp-Session-Id, opened with a
	// token of that pool; nil until opened.
	sessions [2][]string
	dials    atomic.Int64
	// dialsAfterWarmup is dials when the measured runs begin.
	dialsAfterWarmup int64
}

// loadClient is one session's connection and where it is in each pool.
type loadClient struct {
	hc     *http.Client
	cursor [2]int
	reqs   map[loadReqKey]*http.Request
	bodies map[loadReqKey]*rewindBody
	buf    bytes.Buffer
}

// buildLoadServer builds the server program once.
func buildLoadServer(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "loadbench-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mcp-go-contrib/descope/e2e/loadbench/server").CombinedOutput()
	if err != nil {
		b.Fatalf("go build loadbench/server: %v\n%s", err, out)
	}
	return bin
}

// startLoadServer starts the program on cpus (nil: wherever) and waits
// until it serves.
func startLoadServer(b *testing.B, bin string, ds *descopetest.Server, name string, cpus []int, args ...string) *loadServer {
	b.Helper()
	if dir := os.Getenv("LOADBENCH_PROFILE_DIR"); dir != "" {
		args = append(args, "-cpuprofile", filepath.Join(dir, name+".pprof"))
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		n, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(n, "DESCOPE_") && !strings.HasPrefix(n, "MCP_") && n != "GOMAXPROCS" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DESCOPE_CONFIG_URL="+ds.WellKnownURL())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := startPinned(cmd, cpus); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stopProcess(cmd, 10*time.Second)
		if s := stderr.String(); s != "" {
			b.Logf("%s said: %s", name, s)
		}
	})
	s := &loadServer{name: name, cmd: cmd, cpus: cpus}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, err := fmt.Sscanf(sc.Text(), "loadbench: serving %s debug %s gomaxprocs %d", &s.url, &s.debug, &s.procs); err == nil {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("the server exited before serving")
	}()
	select {
	case err := <-ready:
		if err != nil {
			b.Fatalf("%s: %v: %s", name, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		b.Fatalf("%s did not start: %s", name, stderr.String())
	}
	for c := range s.clients {
		dialer := &net.Dialer{}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				s.dials.Add(1)
				return dialer.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 1,
		}
		b.Cleanup(tr.CloseIdleConnections)
		s.clients[c] = &loadClient{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second},
			reqs: map[loadReqKey]*http.Request{}, bodies: map[loadReqKey]*rewindBody{}}
	}
	return s
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mintPool mints n tokens for aud and deals them to the sessions: token j
// belongs to session j % loadSessions, whose caller is user
// (j % loadSessions) % loadUsers. With n == loadUsers, every session of a
// user shares that user's one token.
func mintPool(ds *descopetest.Server, aud string, n int) [][]string {
	tokens := make([]string, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.NumCPU() {
		wg.Go(func() {
			for j := int(next.Add(1)) - 1; j < n; j = int(next.Add(1)) - 1 {
				tokens[j] = ds.Mint(map[string]any{"aud": aud, "sub": loadSubject(j % loadSessions % loadUsers),
					"scope": loadScope, "roles": loadRoles})
			}
		})
	}
	wg.Wait()
	pool := make([][]string, loadSessions)
	for c := range pool {
		if n == loadUsers {
			pool[c] = []string{tokens[c%loadUsers]}
			continue
		}
		for j := c; j < n; j += loadSessions {
			pool[c] = append(pool[c], tokens[j])
		}
	}
	return pool
}

// The requests. Every call of a run sends the same body.
const (
	loadInitialize  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"loadbench","version":"1"}}}`
	loadInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	loadCallLegacy  = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	loadCallParams  = `{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`
	loadCallModern  = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":` + loadCallParams + `}`
)

var loadModernHeaders = mcp.StandardHeaders(eraModern, "tools/call", json.RawMessage(loadCallParams))

// post sends one request and returns status, headers and the whole body.
func (c *loadClient) post(url, token, session, version string, body string) (int, http.Header, []byte, error) {
	req, err := loadRequest(url, session, version, body)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// call sends whoami in era, with session c's next token of pool. The
// client reuses its request and buffer, so that as much as possible of the
// client's share of the CPUs goes to the server's replies.
func (s *loadServer) call(c int, era loadEra, temp int, pool [][]string) ([]byte, error) {
	cl := s.clients[c]
	mine := pool[c]
	token := mine[cl.cursor[temp]%len(mine)]
	cl.cursor[temp]++
	k := loadReqKey{era.version, temp}
	req := cl.reqs[k]
	if req == nil {
		session, body := "", loadCallModern
		if era.version == eraLegacy {
			session, body = s.sessions[temp][c], loadCallLegacy
		}
		var err error
		if req, err = loadRequest(s.url, session, era.version, body); err != nil {
			return nil, err
		}
		cl.reqs[k] = req
		cl.bodies[k] = &rewindBody{body: body}
	}
	body := cl.bodies[k]
	body.off = 0
	req.Body = body
	req.Header["Authorization"] = []string{"Bearer " + token}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return nil, err
	}
	cl.buf.Reset()
	_, err = cl.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	out := cl.buf.Bytes()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"result"`)) || bytes.Contains(out, []byte(`"isError":true`)) {
		return nil, fmt.Errorf("%s: tools/call whoami (%s, session %d): status %d: %.300s", s.name, era.version, c, resp.StatusCode, out)
	}
	return out, nil
}

type loadReqKey struct {
	version string
	temp    int
}

// loadRequest builds a POST to url with the headers an MCP client sends.
func loadRequest(url, session, version, body string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if version != "" {
		req.Header.Set("MCP-Protocol-Version", version)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if version == eraModern {
		for k, v := range loadModernHeaders {
			req.Header.Set(k, v)
		}
	}
	return req, nil
}

// rewindBody is a request body that can be sent again.
type rewindBody struct {
	body string
	off  int
}

func (r *rewindBody) Read(p []byte) (int, error) {
	if r.off >= len(r.body) {
		return 0, io.EOF
	}
	n := copy(p, r.body[r.off:])
	r.off += n
	return n, nil
}

func (r *rewindBody) Close() error { return nil }

// openSessions opens the 32 sessions of pool on s: initialize, then
// notifications/initialized, each with the session's first token.
func (s *loadServer) openSessions(b *testing.B, temp int, pool [][]string) {
	b.Helper()
	s.sessions[temp] = make([]string, loadSessions)
	for c := range s.sessions[temp] {
		cl := s.clients[c]
		status, h, out, err := cl.post(s.url, pool[c][0], "", "", loadInitialize)
		if err != nil || status != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
			b.Fatalf("%s: initialize: %v, status %d: %.300s", s.name, err, status, out)
		}
		id := h.Get("Mcp-Session-Id")
		status, _, out, err = cl.post(s.url, pool[c][0], id, eraLegacy, loadInitialized)
		if err != nil || status != http.StatusAccepted {
			b.Fatalf("%s: notifications/initialized: %v, status %d: %.300s", s.name, err, status, out)
		}
		s.sessions[temp][c] = id
	}
	if s.anyCaller {
		// Unbound sessions serve any token: both pools share them.
		s.sessions[1-temp] = s.sessions[temp]
	}
}

// checkWhoami calls whoami once from every session and checks the reply:
// the caller's own claims from a protected server, the fixed caller from
// one that checks no token (anyCaller). It returns the reply's size.
func (s *loadServer) checkWhoami(b *testing.B, era loadEra, temp int, pool [][]string) int {
	b.Helper()
	size := -1
	for c := range loadSessions {
		out, err := s.call(c, era, temp, pool)
		if err != nil {
			b.Fatal(err)
		}
		if i := bytes.LastIndex(out, []byte("data: ")); i >= 0 { // an SSE reply
			out = bytes.TrimSpace(out[i+len("data: "):])
		}
		var msg struct {
			Result struct {
				Content []struct{ Text string } `json:"content"`
			} `json:"result"`
		}
		if err := json.Unmarshal(out, &msg); err != nil || len(msg.Result.Content) != 1 {
			b.Fatalf("%s: whoami reply: %v: %.300s", s.name, err, out)
		}
		text := msg.Result.Content[0].Text
		var id struct {
			Sub string `json:"sub"`
		}
		if err := json.Unmarshal([]byte(text), &id); err != nil {
			b.Fatalf("%s: whoami text: %v: %s", s.name, err, text)
		}
		if want := loadSubject(c % loadUsers); !s.anyCaller && id.Sub != want {
			b.Fatalf("%s: session %d: whoami says %q, want %q", s.name, c, id.Sub, want)
		}
		if size >= 0 && len(text) != size {
			b.Fatalf("%s: whoami replies of different sizes: %d and %d", s.name, size, len(text))
		}
		size = len(text)
	}
	return size
}

// run has every session call whoami for d and measures the server.
func (s *loadServer) run(b *testing.B, era loadEra, temp int, pool [][]string, d time.Duration) loadResult {
	b.Helper()
	before := s.memStats(b)
	cpu0, self0, all0 := procTicks(b, s.cmd.Process.Pid), procTicks(b, os.Getpid()), cpuTicks(b, s.cpus)
	var stop atomic.Bool
	var failed atomic.Pointer[error]
	counts := make([]int, loadSessions)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	for c := range loadSessions {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := s.call(c, era, temp, pool); err != nil {
					failed.CompareAndSwap(nil, &err)
					stop.Store(true)
					return
				}
				counts[c]++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	timer.Stop()
	cpu1, self1, all1 := procTicks(b, s.cmd.Process.Pid), procTicks(b, os.Getpid()), cpuTicks(b, s.cpus)
	after := s.memStats(b)
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	r := loadResult{elapsed: elapsed, cpuTicks: cpu1 - cpu0, clientTick: self1 - self0, others: -1,
		mallocs: after.Mallocs - before.Mallocs, bytes: after.TotalAlloc - before.TotalAlloc}
	if s.cpus != nil {
		// Both counts are rounded to ticks: a few ticks below zero is none.
		r.others = max(0, all1-all0-(cpu1-cpu0))
	}
	for _, n := range counts {
		r.calls += n
	}
	return r
}

type loadMemStats struct {
	Mallocs    uint64 `json:"mallocs"`
	TotalAlloc uint64 `json:"total_alloc"`
}

func (s *loadServer) memStats(b *testing.B) loadMemStats {
	b.Helper()
	resp, err := http.Get(s.debug + "/debug/memstats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var m loadMemStats
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		b.Fatalf("%s: memstats: %v", s.name, err)
	}
	return m
}

// procTicks returns utime+stime of process pid, all its threads, in clock
// ticks (fields 14 and 15 of /proc/PID/stat, counted after the command
// name, which may hold spaces).
func procTicks(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return utime + stime
}

// cpuTicks returns the busy time of cpus (every column of their lines in
// /proc/stat but idle and iowait), or -1 for nil cpus.
func cpuTicks(b *testing.B, cpus []int) int64 {
	b.Helper()
	if cpus == nil {
		return -1
	}
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		n, ok := strings.CutPrefix(f[0], "cpu")
		cpu, err := strconv.Atoi(n)
		if !ok || err != nil || !slices.Contains(cpus, cpu) {
			continue
		}
		// user nice system idle iowait irq softirq steal (guest time is
		// already in user).
		for i, v := range f[1:min(len(f), 9)] {
			if i == 3 || i == 4 {
				continue
			}
			t, _ := strconv.ParseInt(v, 10, 64)
			total += t
		}
	}
	return total
}

// clockTicks is the unit of /proc/PID/stat's times: getconf CLK_TCK, or
// 100, the value on every common Linux, if getconf cannot tell.
func clockTicks(b *testing.B) int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil && n > 0 {
		return n
	}
	b.Log("getconf CLK_TCK failed: assuming 100 clock ticks per second")
	return 100
}

// loadOnly reads LOADBENCH_ONLY: nil when it is unset, else the set of
// "era tokens" pairs to measure.
func loadOnly(b *testing.B) map[string]bool {
	v := os.Getenv("LOADBENCH_ONLY")
	if v == "" {
		return nil
	}
	known := map[string]bool{}
	for _, era := range loadEras {
		for _, temp := range loadTemps {
			known[era.name+" "+temp] = true
		}
	}
	only := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.Join(strings.Fields(item), " ")
		if !known[item] {
			b.Fatalf("LOADBENCH_ONLY=%q: %q is not one of %v", v, item, slices.Sorted(maps.Keys(known)))
		}
		only[item] = true
	}
	return only
}

func loadEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func loadEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// CPU affinity. The server gets the first half of the CPUs this process
// may use and the client the rest, so neither takes the other's.

// cpuMask is a sched_setaffinity mask for up to 1024 CPUs.
type cpuMask [16]uint64

func splitCPUs(b *testing.B) (server, client []int) {
	if v := os.Getenv("LOADBENCH_PIN"); v == "off" || v == "0" {
		return nil, nil
	}
	var m cpuMask
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m))); errno != 0 {
		b.Logf("sched_getaffinity: %v; not pinning", errno)
		return nil, nil
	}
	var cpus []int
	for i := range len(m) * 64 {
		if m[i/64]&(1<<(i%64)) != 0 {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		b.Log("one CPU: server and client share it")
		return nil, nil
	}
	half := (len(cpus) + 1) / 2
	return cpus[:half], cpus[half:]
}

func setAffinity(tid int, cpus []int) error {
	var m cpuMask
	for _, c := range cpus {
		m[c/64] |= 1 << (c % 64)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m))); errno != 0 {
		return errno
	}
	return nil
}

// pinProcess moves every thread of this process to cpus (threads made
// later inherit it from the thread that makes them), and back at the end.
func pinProcess(b *testing.B, cpus []int) {
	b.Helper()
	var all cpuMask
	_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(all), uintptr(unsafe.Pointer(&all)))
	var orig []int
	for i := range len(all) * 64 {
		if all[i/64]&(1<<(i%64)) != 0 {
			orig = append(orig, i)
		}
	}
	each := func(cpus []int) {
		// Twice: a thread started while the first pass ran is caught by
		// the second.
		for range 2 {
			tasks, err := os.ReadDir("/proc/self/task")
			if err != nil {
				b.Fatal(err)
			}
			for _, t := range tasks {
				if tid, err := strconv.Atoi(t.Name()); err == nil {
					_ = setAffinity(tid, cpus)
				}
			}
		}
	}
	each(cpus)
	// More Ps than CPUs would only make them take turns.
	procs := runtime.GOMAXPROCS(len(cpus))
	b.Cleanup(func() {
		each(orig)
		runtime.GOMAXPROCS(procs)
	})
}

// startPinned starts cmd on cpus: the child inherits the affinity of the
// thread that forks it, so that thread holds cpus for the moment.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	if cpus == nil {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var mine cpuMask
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(mine), uintptr(unsafe.Pointer(&mine))); errno != 0 {
		return errno
	}
	if err := setAffinity(0, cpus); err != nil {
		return err
	}
	err := cmd.Start()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mine), uintptr(unsafe.Pointer(&mine))); errno != 0 && err == nil {
		err = errno
	}
	return err
}
