package descope_test

// TestSoak runs a protected mcp-go server on loopback against a fake
// Descope and sends it concurrent sessionless tools/call requests with a mix
// of valid, expired, wrong-audience, under-scoped and garbage tokens, while
// the signing key rotates and the key set goes down and comes back.
//
//	go test -run '^TestSoak$' ./auth/descope/                       # 3s
//	SOAK_DURATION=60s go test -run '^TestSoak$' -v ./auth/descope/  # make soak
//
// The schedule, as fractions of the duration:
//
//	0.15  RotateKey: the new key signs from now on. Tokens of the new key are
//	      sent at once as "rotation window" requests (accepted or refused,
//	      both fine, counted apart) until the provider is seen to accept one;
//	      from then on they are the valid tokens.
//	0.35  RemoveKey of the old key. Once the provider's key count drops, old
//	      tokens never sent before are sent and must be refused.
//	0.50  the key set answers 503 ...
//	0.70  ... and comes back. Keys loaded before the outage stay in use, so
//	      no valid token may be refused during it.
//
// Rotation and outage never overlap: a rotation during an outage is the one
// time a valid token can legitimately go unverifiable.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
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
	soakDefaultDuration = 3 * time.Second
	soakWorkers         = 8
	soakPoolSize        = 8
	soakGoroutineSlack  = 3       // goroutines allowed above the baseline after shutdown
	soakHeapSlack       = 8 << 20 // bytes of live heap allowed above the baseline
	soakRefreshGap      = 50 * time.Millisecond
)

// soakClass is what a request's token is, and so what its answer must be.
type soakClass int

const (
	soakValid    soakClass = iota // reused valid token (mostly cache hits): 200
	soakFresh                     // never-seen valid token (full verification): 200
	soakWindow                    // new key, before the provider was seen to know it: 200 or 401
	soakExpired                   // 401
	soakWrongAud                  // 401
	soakNoScope                   // valid but without the required scope: 403
	soakGarbage                   // forged, tampered, malformed or missing: 401
	soakRevoked                   // signed by the removed key, after the provider dropped it: 401
	soakClasses
)

var soakClassNames = [soakClasses]string{"valid (reused)", "valid (fresh)", "rotation window", "expired", "wrong audience", "missing scope", "garbage", "removed key"}

// soakTokens are the tokens of one signing key.
type soakTokens struct {
	kid                              string
	valid, expired, wrongAud, noScop []string
}

type soakCounts struct {
	sent, ok, unauthorized, forbidden, unavailable, other, transport atomic.Int64
}

// soakRun is the shared state of one run.
type soakRun struct {
	ds       *descopetest.Server
	p        *descope.Provider
	url      string
	resource string
	client   *http.Client
	refresh  time.Duration // the provider's KeyRefreshInterval

	current atomic.Pointer[soakTokens] // the valid tokens now
	window  atomic.Pointer[soakTokens] // the new key's tokens before pickup
	revoked atomic.Pointer[[]string]   // old-key tokens, once the provider dropped the key
	fresh   chan string                // freshly minted valid tokens
	outage  atomic.Bool

	mu      sync.RWMutex
	known   map[string]bool // kids the provider is known to accept
	removed map[string]bool // kids taken out of the key set

	counts          [soakClasses]soakCounts
	validRefused    atomic.Int64 // valid or fresh, outside any window, not 200
	refusedOutage   atomic.Int64 // ... of which during the outage
	invalidAccepted atomic.Int64 // anything that must be refused, answered 200
	stale           atomic.Int64 // valid when sent, its key removed in flight: not judged
	maxValidLatency atomic.Int64

	failMu   sync.Mutex
	failures []string
}

type soakReport struct {
	duration                                  time.Duration
	requests                                  int64
	rotationPickup, removalPickup, recovery   time.Duration
	sawFailing                                bool
	jwksRequests                              int64
	goroutinesBefore, goroutinesDuring        int
	heapBefore                                uint64
	counts                                    [soakClasses][7]int64
	validRefused, refusedOutage, invalidAcc   int64
	stale                                     int64
	maxValidLatency                           time.Duration
	failures                                  []string
	keysBefore, keysAfterRotate, keysAtRemove int
}

func TestSoak(t *testing.T) {
	d := soakDefaultDuration
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		d, err = time.ParseDuration(v)
		require.NoError(t, err, "SOAK_DURATION")
		require.Positive(t, d, "SOAK_DURATION")
	}

	goroutinesBefore, heapBefore := soakBaseline()
	rep := soakExercise(t, d)
	rep.goroutinesBefore, rep.heapBefore = goroutinesBefore, heapBefore

	// Everything the run started is closed: goroutines must drain back to
	// the baseline, and the live heap with them.
	goroutinesAfter := runtime.NumGoroutine()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for goroutinesAfter > goroutinesBefore {
		select {
		case <-deadline.C:
			break wait
		case <-tick.C:
			goroutinesAfter = runtime.NumGoroutine()
		}
	}
	_, heapAfter := soakBaseline()

	var b strings.Builder
	fmt.Fprintf(&b, "soak report\n")
	fmt.Fprintf(&b, "  duration            %v, %d workers\n", rep.duration.Round(time.Millisecond), soakWorkers)
	fmt.Fprintf(&b, "  requests            %d (%.0f req/s)\n", rep.requests, float64(rep.requests)/rep.duration.Seconds())
	fmt.Fprintf(&b, "  %-18s %8s %8s %8s %8s %8s %8s %8s\n", "class", "sent", "200", "401", "403", "503", "other", "conn err")
	for c := soakClass(0); c < soakClasses; c++ {
		n := rep.counts[c]
		fmt.Fprintf(&b, "  %-18s %8d %8d %8d %8d %8d %8d %8d\n", soakClassNames[c], n[0], n[1], n[2], n[3], n[4], n[5], n[6])
	}
	fmt.Fprintf(&b, "  valid refused       %d (during the outage: %d)  [must be 0]\n", rep.validRefused, rep.refusedOutage)
	fmt.Fprintf(&b, "  invalid accepted    %d  [must be 0]\n", rep.invalidAcc)
	fmt.Fprintf(&b, "  key removed in flight, not judged: %d\n", rep.stale)
	fmt.Fprintf(&b, "  rotation            new key accepted %v after it was published; window requests: %d accepted, %d refused\n",
		rep.rotationPickup.Round(time.Millisecond), rep.counts[soakWindow][1], rep.counts[soakWindow][2])
	fmt.Fprintf(&b, "  removal             provider dropped the old key %v after RemoveKey (keys %d -> %d -> %d)\n",
		rep.removalPickup.Round(time.Millisecond), rep.keysBefore, rep.keysAfterRotate, rep.keysAtRemove)
	fmt.Fprintf(&b, "  outage              provider saw the failure: %v; recovered %v after the key set came back\n", rep.sawFailing, rep.recovery.Round(time.Millisecond))
	fmt.Fprintf(&b, "  key set fetches     %d\n", rep.jwksRequests)
	fmt.Fprintf(&b, "  slowest valid       %v\n", rep.maxValidLatency.Round(time.Millisecond))
	fmt.Fprintf(&b, "  goroutines          %d before, %d during, %d after shutdown\n", rep.goroutinesBefore, rep.goroutinesDuring, goroutinesAfter)
	fmt.Fprintf(&b, "  live heap           %.1f MiB before, %.1f MiB after shutdown and GC\n", float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20))
	for _, f := range rep.failures {
		fmt.Fprintf(&b, "  failure: %s\n", f)
	}
	t.Log(b.String())

	assert.Zero(t, rep.validRefused, "valid tokens refused")
	assert.Zero(t, rep.invalidAcc, "invalid tokens accepted")
	for c := soakClass(0); c < soakClasses; c++ {
		assert.Zero(t, rep.counts[c][6], "%s: connection errors", soakClassNames[c])
		assert.Zero(t, rep.counts[c][4], "%s: 503 answers while keys were loaded", soakClassNames[c])
		assert.Zero(t, rep.counts[c][5], "%s: unexpected statuses", soakClassNames[c])
	}
	for _, c := range []soakClass{soakValid, soakFresh, soakExpired, soakWrongAud, soakNoScope, soakGarbage, soakRevoked} {
		assert.Positive(t, rep.counts[c][0], "no %s request was sent", soakClassNames[c])
	}
	assert.True(t, rep.sawFailing, "the provider never noticed the outage")
	assert.LessOrEqual(t, goroutinesAfter, goroutinesBefore+soakGoroutineSlack, "goroutines left running")
	assert.LessOrEqual(t, heapAfter, heapBefore+soakHeapSlack, "live heap did not come back")
}

// soakBaseline collects garbage and returns the goroutine count and the
// live heap.
func soakBaseline() (int, uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// soakExercise runs the scenario for d and shuts everything down before it
// returns.
func soakExercise(t *testing.T, d time.Duration) soakReport {
	t.Helper()
	ds := descopetest.NewServer()
	defer ds.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	refresh := min(max(d/10, 200*time.Millisecond), 10*time.Second)
	p, err := descope.New(descope.Config{
		WellKnownURL:       ds.WellKnownURL(),
		ServerURL:          base,
		RequiredScopes:     []string{"mcp:tools"},
		MinKeyRefreshGap:   soakRefreshGap,
		KeyRefreshInterval: refresh,
		FetchTimeout:       2 * time.Second,
		Logger:             slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	defer func() { _ = p.Close() }()

	mcpServer := server.NewMCPServer("soak", "1.0.0")
	mcpServer.AddTool(mcp.NewTool("echo"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	streamable := server.NewStreamableHTTPServer(mcpServer)
	hs := &http.Server{Handler: auth.Handler(p, streamable), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: soakWorkers, MaxConnsPerHost: soakWorkers}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, hs.Shutdown(ctx))
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
		assert.NoError(t, streamable.Shutdown(ctx))
		tr.CloseIdleConnections()
	}()

	r := &soakRun{
		ds: ds, p: p, url: base + "/mcp", resource: base + "/mcp",
		client:  &http.Client{Transport: tr, Timeout: 10 * time.Second},
		refresh: refresh,
		fresh:   make(chan string, 16),
		known:   map[string]bool{},
		removed: map[string]bool{},
	}
	oldTokens := r.mintPool()
	// Old-key tokens that are never sent until the key is gone, so none of
	// them can be in the verified-token cache.
	var revokedLater []string
	for i := 0; i < soakPoolSize; i++ {
		revokedLater = append(revokedLater, ds.Mint(map[string]any{"aud": r.resource, "scope": "mcp:tools", "sub": fmt.Sprint("U2revoked", i)}))
	}
	_, err = p.VerifyToken(context.Background(), oldTokens.valid[0])
	require.NoError(t, err, "keys load")
	r.known[oldTokens.kid] = true
	r.current.Store(oldTokens)

	// A sanity request: the modern request shape is served.
	status, body := r.send(context.Background(), "Bearer "+oldTokens.valid[0])
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"text":"ok"`)

	rep := soakReport{keysBefore: p.KeyStatus().Keys}
	jwksBefore := ds.JWKSRequests()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.mintFresh(ctx)
	}()
	for w := 0; w < soakWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w))))
		}()
	}
	start := time.Now()
	r.schedule(t, start, d, oldTokens, revokedLater, &rep)
	rep.goroutinesDuring = runtime.NumGoroutine()
	stop()
	wg.Wait()
	rep.duration = time.Since(start)
	rep.jwksRequests = ds.JWKSRequests() - jwksBefore

	for c := soakClass(0); c < soakClasses; c++ {
		n := &r.counts[c]
		rep.counts[c] = [7]int64{n.sent.Load(), n.ok.Load(), n.unauthorized.Load(), n.forbidden.Load(), n.unavailable.Load(), n.other.Load(), n.transport.Load()}
		rep.requests += n.sent.Load()
	}
	rep.validRefused, rep.refusedOutage = r.validRefused.Load(), r.refusedOutage.Load()
	rep.invalidAcc, rep.stale = r.invalidAccepted.Load(), r.stale.Load()
	rep.maxValidLatency = time.Duration(r.maxValidLatency.Load())
	rep.failures = r.failures
	return rep
}

// schedule rotates, removes and takes the key set down at their times, then
// waits for the end of the run.
func (r *soakRun) schedule(t *testing.T, start time.Time, d time.Duration, old *soakTokens, revokedLater []string, rep *soakReport) {
	t.Helper()
	at := func(frac float64) {
		timer := time.NewTimer(time.Until(start.Add(time.Duration(frac * float64(d)))))
		defer timer.Stop()
		<-timer.C
	}
	bound := 5*time.Second + soakRefreshGap

	at(0.15)
	kid := r.ds.RotateKey()
	rotated := time.Now()
	// Clients get new-key tokens at once; the provider learns the key on
	// the first such token after the refresh gap.
	first := r.ds.Mint(map[string]any{"aud": r.resource, "scope": "mcp:tools", "sub": "U2rotated"})
	r.window.Store(&soakTokens{kid: kid, valid: []string{first}})
	if !soakUntil(bound, func() bool {
		_, err := r.p.VerifyToken(context.Background(), first)
		return err == nil
	}) {
		t.Errorf("the rotated key was not accepted within %v", bound)
	}
	rep.rotationPickup = time.Since(rotated)
	r.mu.Lock()
	r.known[kid] = true
	r.mu.Unlock()
	r.current.Store(r.mintPool())
	r.window.Store(nil)
	rep.keysAfterRotate = r.p.KeyStatus().Keys

	at(0.35)
	removed := time.Now()
	r.mu.Lock()
	r.removed[old.kid] = true
	r.mu.Unlock()
	r.ds.RemoveKey(old.kid)
	bound = 5*time.Second + r.refresh
	if !soakUntil(bound, func() bool { return r.p.KeyStatus().Keys == 1 }) {
		t.Errorf("the removed key was still loaded after %v", bound)
	} else {
		r.revoked.Store(&revokedLater)
	}
	rep.removalPickup = time.Since(removed)
	rep.keysAtRemove = r.p.KeyStatus().Keys

	at(0.50)
	r.outage.Store(true)
	r.ds.SetJWKSFault(descopetest.FaultUnavailable)
	end := start.Add(time.Duration(0.70 * float64(d)))
	// However late the schedule runs, the outage lasts long enough for the
	// provider to try a fetch (at least one per refresh gap is asked for by
	// forged key IDs).
	rep.sawFailing = soakUntil(max(time.Until(end), time.Second), func() bool { return r.p.KeyStatus().Failing })
	at(0.70)
	r.ds.SetJWKSFault(descopetest.FaultNone)
	back := time.Now()
	bound = 5*time.Second + r.refresh
	if !soakUntil(bound, func() bool { return !r.p.KeyStatus().Failing }) {
		t.Errorf("the provider still reported failing %v after the key set came back", bound)
	}
	rep.recovery = time.Since(back)
	r.outage.Store(false)

	at(1)
}

// soakUntil polls cond every 5ms for at most limit.
func soakUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(max(limit, 0))
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// mintPool mints the tokens of the current signing key.
func (r *soakRun) mintPool() *soakTokens {
	ts := &soakTokens{}
	now := time.Now()
	for i := 0; i < soakPoolSize; i++ {
		sub := fmt.Sprint("U2soak", i)
		ts.valid = append(ts.valid, r.ds.Mint(map[string]any{"aud": r.resource, "scope": "mcp:tools", "sub": sub}))
		ts.expired = append(ts.expired, r.ds.Mint(map[string]any{"aud": r.resource, "scope": "mcp:tools", "sub": sub,
			"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()}))
		ts.wrongAud = append(ts.wrongAud, r.ds.Mint(map[string]any{"aud": "https://other.example/mcp", "scope": "mcp:tools", "sub": sub}))
		ts.noScop = append(ts.noScop, r.ds.Mint(map[string]any{"aud": r.resource, "scope": "notes:read", "sub": sub}))
	}
	ts.kid = soakKID(ts.valid[0])
	return ts
}

// mintFresh keeps r.fresh stocked with valid tokens never sent before.
func (r *soakRun) mintFresh(ctx context.Context) {
	for i := 0; ; i++ {
		tok := r.ds.Mint(map[string]any{"aud": r.resource, "scope": "mcp:tools", "sub": fmt.Sprint("U2fresh", i)})
		select {
		case r.fresh <- tok:
		case <-ctx.Done():
			return
		}
	}
}

// soakKID reads the kid from a token's header.
func soakKID(tok string) string {
	h, _, _ := strings.Cut(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(h)
	var header struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &header)
	return header.Kid
}

// kidState reports whether the provider is known to accept kid and whether
// it was removed.
func (r *soakRun) kidState(kid string) (known, removed bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.known[kid], r.removed[kid]
}

// pick chooses the next request: its class and Authorization header ("" for
// none).
func (r *soakRun) pick(rng *rand.Rand) (soakClass, string, string) {
	cur := r.current.Load()
	one := func(s []string) string { return s[rng.IntN(len(s))] }
	n := rng.IntN(100)
	switch {
	case n < 35:
		tok := one(cur.valid)
		return soakValid, "Bearer " + tok, cur.kid
	case n < 45:
		select {
		case tok := <-r.fresh:
			kid := soakKID(tok)
			if known, _ := r.kidState(kid); !known {
				return soakWindow, "Bearer " + tok, kid
			}
			return soakFresh, "Bearer " + tok, kid
		default:
			return soakValid, "Bearer " + one(cur.valid), cur.kid
		}
	case n < 52:
		if w := r.window.Load(); w != nil {
			return soakWindow, "Bearer " + one(w.valid), w.kid
		}
		return soakValid, "Bearer " + one(cur.valid), cur.kid
	case n < 60:
		return soakExpired, "Bearer " + one(cur.expired), ""
	case n < 68:
		return soakWrongAud, "Bearer " + one(cur.wrongAud), ""
	case n < 73:
		return soakNoScope, "Bearer " + one(cur.noScop), ""
	case n < 77:
		if rv := r.revoked.Load(); rv != nil {
			return soakRevoked, "Bearer " + one(*rv), ""
		}
	}
	return soakGarbage, soakGarbageHeader(rng, one(cur.valid)), ""
}

// soakGarbageHeader returns an Authorization header that must be refused.
func soakGarbageHeader(rng *rand.Rand, valid string) string {
	h, p, s := hostileSplit(valid)
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	switch rng.IntN(8) {
	case 0:
		return "Bearer " + random(30) + "." + random(200) + "." + random(256)
	case 1: // a forged kid: each one asks for a key fetch, at most one per gap
		fh := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"RS256","kid":"forged-%d","typ":"JWT"}`, rng.Uint64()))
		return "Bearer " + fh + "." + p + "." + s
	case 2: // a tampered signature
		b, _ := base64.RawURLEncoding.DecodeString(s)
		b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		return "Bearer " + h + "." + p + "." + base64.RawURLEncoding.EncodeToString(b)
	case 3:
		return "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + p + "."
	case 4:
		return ""
	case 5:
		return "Bearer " + h + "." + p + "." + s + " " + s
	case 6:
		return "Bearer " + strings.Repeat("a", auth.DefaultMaxHeaderBytes)
	default:
		return "Basic " + random(12)
	}
}

// work sends requests until ctx ends.
func (r *soakRun) work(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		class, authz, kid := r.pick(rng)
		outage := r.outage.Load()
		began := time.Now()
		status, body := r.send(ctx, authz)
		took := time.Since(began)
		if status == -1 && ctx.Err() != nil {
			return // the run ended mid-request
		}
		n := &r.counts[class]
		n.sent.Add(1)
		switch status {
		case -1:
			n.transport.Add(1)
			r.fail(fmt.Sprintf("%s: %s", soakClassNames[class], body))
		case http.StatusOK:
			n.ok.Add(1)
		case http.StatusUnauthorized:
			n.unauthorized.Add(1)
		case http.StatusForbidden:
			n.forbidden.Add(1)
		case http.StatusServiceUnavailable:
			n.unavailable.Add(1)
		default:
			n.other.Add(1)
			r.fail(fmt.Sprintf("%s: status %d: %.200s", soakClassNames[class], status, body))
		}

		switch class {
		case soakValid, soakFresh:
			if _, removed := r.kidState(kid); removed {
				r.stale.Add(1)
				continue
			}
			for {
				m := r.maxValidLatency.Load()
				if int64(took) <= m || r.maxValidLatency.CompareAndSwap(m, int64(took)) {
					break
				}
			}
			if status != http.StatusOK || !strings.Contains(body, `"text":"ok"`) {
				r.validRefused.Add(1)
				if outage || r.outage.Load() {
					r.refusedOutage.Add(1)
				}
				r.fail(fmt.Sprintf("%s refused: status %d: %.200s", soakClassNames[class], status, body))
			}
		case soakWindow:
		case soakNoScope:
			if status == http.StatusOK {
				r.invalidAccepted.Add(1)
				r.fail("a token without the required scope was served")
			} else if status != http.StatusForbidden {
				r.fail(fmt.Sprintf("missing scope answered %d", status))
			}
		default:
			if status == http.StatusOK {
				r.invalidAccepted.Add(1)
				r.fail(fmt.Sprintf("%s accepted: %.80s", soakClassNames[class], authz))
			} else if status != http.StatusUnauthorized {
				r.fail(fmt.Sprintf("%s answered %d", soakClassNames[class], status))
			}
		}
	}
}

// soakBody is a sessionless tools/call of the 2026-07-28 protocol.
var soakBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)

// send posts one tools/call and returns the status and body; status -1
// means the request failed, with the error as the body.
func (r *soakRun) send(ctx context.Context, authorization string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(soakBody))
	if err != nil {
		return -1, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "echo")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil && !errors.Is(err, context.Canceled) {
		return -1, err.Error()
	}
	return resp.StatusCode, string(body)
}

// fail keeps the first few failures for the report.
func (r *soakRun) fail(msg string) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if len(r.failures) < 10 {
		r.failures = append(r.failures, msg)
	}
}
