package descope_test

// Benchmarks for `make bench`. Each group measures its baseline in the same
// run: raw RSA and plain jwt/v5 beside our verification, the bare handler
// beside the middleware, an unprotected mcp-go server beside a protected one.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
	"github.com/mcp-go-contrib/descope/auth/dpop"
)

// benchProvider builds a provider against ds whose keys have loaded.
func benchProvider(b *testing.B, ds *descopetest.Server, cfg descope.Config) *descope.Provider {
	b.Helper()
	cfg.WellKnownURL = ds.WellKnownURL()
	cfg.ServerURL = "https://mcp.example.com"
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := descope.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	// Warm up: the first call waits for the keys.
	if _, err := p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL})); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkVerify compares one token verification four ways.
func BenchmarkVerify(b *testing.B) {
	ds := descopetest.NewServer(descopetest.WithMCPServerURL(resourceURL))
	b.Cleanup(ds.Close)
	token := ds.Mint(map[string]any{"scope": "mcp:tools notes:read"})
	pub := ds.PublicKey(ds.SigningKeyID())

	b.Run("baseline=rsa-pkcs1v15", func(b *testing.B) {
		dot := strings.LastIndexByte(token, '.')
		digest := sha256.Sum256([]byte(token[:dot]))
		sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline=jwt-parse", func(b *testing.B) {
		parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second), jwt.WithAudience(resourceURL))
		key := func(*jwt.Token) (any, error) { return pub, nil }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parser.ParseWithClaims(token, jwt.MapClaims{}, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		p := benchProvider(b, ds, descope.Config{DisableTokenCache: true})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.VerifyToken(context.Background(), token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hot", func(b *testing.B) {
		p := benchProvider(b, ds, descope.Config{})
		if _, err := p.VerifyToken(context.Background(), token); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.VerifyToken(context.Background(), token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the handler rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// SetReadDeadline is there as on net/http's own writer, so that the
// middleware takes the path it takes in a real HTTP/1 server.
func (w *discardWriter) SetReadDeadline(time.Time) error { return nil }

// BenchmarkMiddleware compares a trivial handler with and without the
// middleware in front (cache on, so the token check is a hit).
func BenchmarkMiddleware(b *testing.B) {
	ds := descopetest.NewServer()
	b.Cleanup(ds.Close)
	p := benchProvider(b, ds, descope.Config{})
	token := ds.Mint(map[string]any{"aud": resourceURL})
	ok := []byte("ok")
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(ok) })
	// A typical sessionless tools/call body: the middleware reads it to
	// learn the operation, so it is part of the per-request cost.
	call := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_note","arguments":{"text":"buy milk"},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	run := func(b *testing.B, h http.Handler, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := &discardWriter{h: http.Header{}}
		r := bytes.NewReader(body)
		serve := func() {
			r.Reset(body)
			req.Body = io.NopCloser(r)
			req.ContentLength = int64(len(body))
			if len(body) == 0 {
				req.Body = http.NoBody
			}
			h.ServeHTTP(w, req)
		}
		serve()
		b.ReportAllocs()
		for b.Loop() {
			serve()
		}
	}
	drain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(ok)
	})
	b.Run("baseline=bare", func(b *testing.B) { run(b, bare, nil) })
	b.Run("middleware", func(b *testing.B) { run(b, auth.Middleware(p)(bare), nil) })
	b.Run("baseline=bare+tools-call", func(b *testing.B) { run(b, drain, call) })
	b.Run("middleware+tools-call", func(b *testing.B) { run(b, auth.Middleware(p)(drain), call) })
	pol := auth.NewPolicy()
	b.Run("middleware+policy+tools-call", func(b *testing.B) { run(b, auth.Middleware(p, auth.WithPolicy(pol))(drain), call) })
	b.Run("middleware+dpop+tools-call", func(b *testing.B) { benchDPoP(b, ds, p, drain, call) })
}

// benchDPoP is middleware+tools-call with a DPoP-bound token: the token
// check is the same cache hit, plus one ES256 proof per request. Proofs are
// made before the clock starts (each jti is good once); the replay cache
// holds every one of them, as it would under this load.
func benchDPoP(b *testing.B, ds *descopetest.Server, p *descope.Provider, h http.Handler, body []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	jkt, _ := dpop.Thumbprint(key.Public())
	token := ds.Mint(map[string]any{"aud": resourceURL, "cnf": map[string]any{"jkt": jkt}})
	proofs := make([]string, b.N+1)
	for i := range proofs {
		if proofs[i], err = dpop.NewProof(key, dpop.ProofClaims{Method: http.MethodPost, URL: resourceURL, AccessToken: token}); err != nil {
			b.Fatal(err)
		}
	}
	mw := auth.Middleware(p)(h)
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "DPoP "+token)
	w := &discardWriter{h: http.Header{}}
	r := bytes.NewReader(body)
	serve := func(proof string) {
		r.Reset(body)
		req.Body = io.NopCloser(r)
		req.ContentLength = int64(len(body))
		req.Header["Dpop"] = []string{proof}
		mw.ServeHTTP(w, req)
	}
	serve(proofs[b.N])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(proofs[i])
	}
}

// echoServer is an mcp-go server with one cheap tool.
func echoServer() *server.StreamableHTTPServer {
	s := server.NewMCPServer("bench", "1.0.0")
	s.AddTool(mcp.NewTool("echo"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	return server.NewStreamableHTTPServer(s)
}

const benchClients = 8

// loadRun sends requests first..last-1 (sessionless tools/call) from
// benchClients concurrent clients and returns how long they took. tokenFor
// picks the bearer token of request i ("" for none).
func loadRun(b *testing.B, hc *http.Client, url string, first, last int, tokenFor func(client, i int) string) time.Duration {
	b.Helper()
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	var next atomic.Int64
	next.Store(int64(first))
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < benchClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= last {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("MCP-Protocol-Version", "2026-07-28")
				req.Header.Set("Mcp-Method", "tools/call")
				req.Header.Set("Mcp-Name", "echo")
				if tok := tokenFor(c, i); tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := hc.Do(req)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Sprintf("status %d", resp.StatusCode))
					return
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		b.Fatalf("load run failed: %v", f)
	}
	return time.Since(start)
}

// BenchmarkLoad serves tools/call through the same mcp-go server mounted
// unprotected and protected, on loopback, b.N requests per variant (and
// once more unprotected but with the token sent, to separate the cost of
// carrying a token from that of checking it). The
// variants take turns in several rounds so that drift in the machine's
// speed hits each alike. It reports req/s of each and the
// protected/unprotected ratios. Hot: one token per client. Cold: a distinct
// token for every request, so every request pays a full verification.
func BenchmarkLoad(b *testing.B) {
	ds := descopetest.NewServer()
	b.Cleanup(ds.Close)
	p := benchProvider(b, ds, descope.Config{})

	mux := http.NewServeMux()
	mux.Handle("/mcp", echoServer())
	plain := httptest.NewServer(mux)
	defer plain.Close()
	guarded := httptest.NewServer(auth.Handler(p, echoServer()))
	defer guarded.Close()

	perClient := make([]string, benchClients)
	for i := range perClient {
		perClient[i] = ds.Mint(map[string]any{"aud": resourceURL, "sub": fmt.Sprint("U2client", i)})
	}
	fresh := make([]string, b.N)
	for i := range fresh {
		fresh[i] = ds.Mint(map[string]any{"aud": resourceURL})
	}
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	none := func(int, int) string { return "" }
	hotToken := func(c, _ int) string { return perClient[c] }
	coldToken := func(_, i int) string { return fresh[i] }
	// Warm up both servers and their connections.
	loadRun(b, hc, plain.URL+"/mcp", 0, 200, none)
	loadRun(b, hc, guarded.URL+"/mcp", 0, 200, hotToken)

	// Many short rounds, each variant in turn, so that drift in the
	// machine's speed hits each alike; the ratios are the medians of the
	// per-round ratios.
	const rounds = 12
	var base, hot, cold time.Duration
	var hotRatios, coldRatios, carryRatios []float64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		first, last := r*b.N/rounds, (r+1)*b.N/rounds
		// The order rotates from round to round, so that no variant
		// always follows the garbage another one left behind.
		runs := []struct {
			url   string
			token func(int, int) string
			took  time.Duration
		}{{plain.URL, none, 0}, {plain.URL, hotToken, 0}, {guarded.URL, hotToken, 0}, {guarded.URL, coldToken, 0}}
		for k := range runs {
			v := &runs[(r+k)%len(runs)]
			v.took = loadRun(b, hc, v.url+"/mcp", first, last, v.token)
		}
		tb, tt, th, tc := runs[0].took, runs[1].took, runs[2].took, runs[3].took
		base, hot, cold = base+tb, hot+th, cold+tc
		hotRatios = append(hotRatios, tb.Seconds()/th.Seconds())
		coldRatios = append(coldRatios, tb.Seconds()/tc.Seconds())
		carryRatios = append(carryRatios, tb.Seconds()/tt.Seconds())
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
	median := func(v []float64) float64 {
		slices.Sort(v)
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
	}
	b.ReportMetric(rate(base), "unprotected-req/s")
	b.ReportMetric(rate(hot), "hot-req/s")
	b.ReportMetric(rate(cold), "cold-req/s")
	b.ReportMetric(median(hotRatios), "hot/unprotected")
	b.ReportMetric(median(coldRatios), "cold/unprotected")
	// The same unprotected server sent the token it ignores: what merely
	// carrying a ~900-byte header costs, before any check.
	b.ReportMetric(median(carryRatios), "token-carried/unprotected")
	b.ReportMetric(0, "ns/op")
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryInvalidFlood sends 1,000,000 distinct invalid tokens (a
// mix of garbage, forged key IDs and bad signatures) and checks that
// nothing they leave behind grows: not the cache, not the heap.
func BenchmarkMemoryInvalidFlood(b *testing.B) {
	const total = 1_000_000
	ds := descopetest.NewServer()
	b.Cleanup(ds.Close)
	p := benchProvider(b, ds, descope.Config{})
	valid := ds.Mint(map[string]any{"aud": resourceURL})
	parts := strings.Split(valid, ".")
	before := heapInUse()
	fetchesBefore := ds.JWKSRequests()
	for b.Loop() {
		for i := 0; i < total; i++ {
			var tok string
			switch i % 10 {
			case 0: // a real header and claims, someone else's signature
				tok = parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%0256d", i))
			case 1, 2, 3, 4: // garbage
				tok = fmt.Sprintf("garbage%d.x.y", i)
			default: // a forged key ID, different every time
				hdr := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"RS256","kid":"forged-%d","typ":"JWT"}`, i))
				tok = hdr + "." + parts[1] + "." + parts[2]
			}
			if _, err := p.VerifyToken(context.Background(), tok); err == nil {
				b.Fatalf("token %d accepted", i)
			}
		}
	}
	after := heapInUse()
	growth := float64(int64(after)-int64(before)) / (1 << 20)
	b.ReportMetric(growth, "heap-growth-MiB")
	b.ReportMetric(float64(ds.JWKSRequests()-fetchesBefore), "jwks-fetches")
	b.ReportMetric(float64(descope.TokenCacheLen(p)), "cache-entries")
	if descope.TokenCacheLen(p) > 1 || growth > 16 {
		b.Fatalf("invalid tokens left state behind: %d cache entries, heap grew %.1f MiB", descope.TokenCacheLen(p), growth)
	}
}

// BenchmarkMemoryValidTokens verifies 100,000 distinct valid tokens (EdDSA,
// so that making them is quick) and checks the cache stays within its bound.
func BenchmarkMemoryValidTokens(b *testing.B) {
	const total = 100_000
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "ed1", ALG: jwkset.AlgEdDSA, USE: jwkset.UseSig}})
	if err != nil {
		b.Fatal(err)
	}
	set, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	const project = "P2benchbenchbenchbenchbench0"
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+project+"/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(set)
	}))
	defer keys.Close()
	p, err := descope.New(descope.Config{
		WellKnownURL: keys.URL + "/v1/apps/" + project,
		ServerURL:    "https://mcp.example.com",
		Algorithms:   []string{"EdDSA"},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	mint := func(i int) string {
		t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"iss": keys.URL + "/v1/apps/" + project, "sub": fmt.Sprint("U", i), "aud": resourceURL,
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		})
		t.Header["kid"] = "ed1"
		s, err := t.SignedString(priv)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	before := heapInUse()
	for b.Loop() {
		for i := 0; i < total; i++ {
			if _, err := p.VerifyToken(context.Background(), mint(i)); err != nil {
				b.Fatalf("token %d: %v", i, err)
			}
		}
	}
	after := heapInUse()
	n := descope.TokenCacheLen(p)
	b.ReportMetric(float64(int64(after)-int64(before))/(1<<20), "heap-growth-MiB")
	b.ReportMetric(float64(n), "cache-entries")
	if n > descope.DefaultTokenCacheSize {
		b.Fatalf("cache holds %d entries, bound is %d", n, descope.DefaultTokenCacheSize)
	}
}
