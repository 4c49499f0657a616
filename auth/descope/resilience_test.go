package descope_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

func quietProvider(t *testing.T, cfg descope.Config) *descope.Provider {
	t.Helper()
	if cfg.ServerURL == "" {
		cfg.ServerURL = "https://mcp.example.com"
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := descope.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// eventually polls cond until it holds or limit passes, and returns how long
// it took by the test's own clock.
func eventually(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestStartsWhileDescopeIsDownAndRecoversAlone(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	ds.SetJWKSFault(descopetest.FaultUnavailable)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL()})
	assert.False(t, p.KeyStatus().Loaded)

	// The background loader keeps trying with backoff.
	eventually(t, 5*time.Second, func() bool { return ds.JWKSRequests() >= 2 })
	tok := ds.Mint(map[string]any{"aud": resourceURL})
	_, err := p.VerifyToken(context.Background(), tok)
	require.ErrorIs(t, err, auth.ErrUnavailable)

	ds.SetJWKSFault(descopetest.FaultNone)
	// No request is needed: the loader succeeds on its next attempt.
	took := eventually(t, 10*time.Second, func() bool { return p.KeyStatus().Loaded })
	t.Logf("keys loaded %v after Descope came back", took)
	st := p.KeyStatus()
	assert.Equal(t, 1, st.Keys)
	assert.False(t, st.Failing)
	assert.WithinDuration(t, time.Now(), st.LastRefresh, 10*time.Second)
	_, err = p.VerifyToken(context.Background(), tok)
	assert.NoError(t, err)
}

func TestHangingDescopeNeverHoldsARequestPastTheFetchTimeout(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	ds.SetJWKSFault(descopetest.FaultHang)
	const timeout = 300 * time.Millisecond
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL(), FetchTimeout: timeout, MinKeyRefreshGap: time.Millisecond})
	tok := ds.Mint(map[string]any{"aud": resourceURL})
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := p.VerifyToken(context.Background(), tok)
		took := time.Since(start)
		assert.ErrorIs(t, err, auth.ErrUnavailable)
		assert.Less(t, took, timeout+time.Second, "request %d waited %v", i, took)
	}
}

func TestOutageAfterStartKeepsServing(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL(), MinKeyRefreshGap: time.Millisecond, FetchTimeout: 200 * time.Millisecond})
	tok := ds.Mint(map[string]any{"aud": resourceURL})
	_, err := p.VerifyToken(context.Background(), tok)
	require.NoError(t, err)
	for _, f := range []descopetest.Fault{descopetest.FaultUnavailable, descopetest.FaultGarbage, descopetest.FaultEmpty, descopetest.FaultHang} {
		ds.SetJWKSFault(f)
		// Force refresh attempts with forged key IDs; each fails.
		_, err = p.VerifyToken(context.Background(), ds.MintWithHeader(map[string]any{"kid": "forged-" + f.String()}, map[string]any{"aud": resourceURL}))
		assert.ErrorIs(t, err, auth.ErrInvalidToken, f.String())
		assert.True(t, p.KeyStatus().Failing, f.String())
		// A fresh valid token (not cached) still verifies with the old keys.
		_, err = p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL, "jti": f.String()}))
		assert.NoError(t, err, f.String())
	}
	ds.SetJWKSFault(descopetest.FaultNone)
	_, err = p.VerifyToken(context.Background(), ds.MintWithHeader(map[string]any{"kid": "forged-last"}, map[string]any{"aud": resourceURL}))
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.False(t, p.KeyStatus().Failing, "a good refresh clears the failure")
}

func TestConcurrentUnknownKeysShareOneFetch(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL(), MinKeyRefreshGap: time.Millisecond})
	_, err := p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL}))
	require.NoError(t, err)
	before := ds.JWKSRequests()

	ds.SetJWKSDelay(200 * time.Millisecond)
	ds.RotateKey()
	tok := ds.Mint(map[string]any{"aud": resourceURL})
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.VerifyToken(context.Background(), tok); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(50), ok.Load())
	assert.Equal(t, before+1, ds.JWKSRequests(), "fifty callers, one fetch")
}

func TestForgedKeyFloodCannotStarveRotation(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	const gap = 300 * time.Millisecond
	p := quietProvider(t, descope.Config{WellKnownURL: ds.WellKnownURL(), MinKeyRefreshGap: gap})
	_, err := p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL}))
	require.NoError(t, err)

	// An attacker sends tokens with random key IDs, as fast as it can.
	ctx, stop := context.WithCancel(context.Background())
	var flood sync.WaitGroup
	for w := 0; w < 4; w++ {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for i := 0; ctx.Err() == nil; i++ {
				start := time.Now()
				_, err := p.VerifyToken(ctx, ds.MintWithHeader(map[string]any{"kid": fmt.Sprint("forged-", w, "-", i)}, map[string]any{"aud": resourceURL}))
				if err == nil {
					t.Error("forged key ID accepted")
				}
				if took := time.Since(start); took > 5*time.Second+time.Second {
					t.Errorf("a forged token waited %v", took)
				}
			}
		}()
	}
	fetchesBefore := ds.JWKSRequests()
	startFlood := time.Now()

	time.Sleep(2 * gap) // let the flood run through a few gaps
	ds.RotateKey()
	real := ds.Mint(map[string]any{"aud": resourceURL})
	took := eventually(t, 10*gap, func() bool {
		_, err := p.VerifyToken(context.Background(), real)
		return err == nil
	})
	stop()
	flood.Wait()
	elapsed := time.Since(startFlood)
	fetches := ds.JWKSRequests() - fetchesBefore
	t.Logf("rotated key accepted after %v; %d fetches in %v of flood", took, fetches, elapsed)
	assert.LessOrEqual(t, took, 2*gap+time.Second, "rotation delay is bounded by the gap")
	assert.LessOrEqual(t, fetches, int64(elapsed/gap)+2, "at most one fetch per gap")
}

// proxy fronts a descopetest server and can replace its key set with an
// oversized one.
func TestOversizedKeySetIsAFailedRefresh(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	var huge atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := ds.Client().Get(ds.URL() + r.URL.Path)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if huge.Load() && strings.HasSuffix(r.URL.Path, "/jwks.json") {
			// Still valid JSON, just too big.
			body = append(body[:len(body)-1], []byte(`,"pad":"`+strings.Repeat("x", 1<<20)+`"}`)...)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(proxy.Close)
	p := quietProvider(t, descope.Config{
		WellKnownURL:     proxy.URL + "/v1/apps/agentic/" + ds.ProjectID() + "/" + ds.MCPServerID(),
		MinKeyRefreshGap: time.Millisecond,
	})
	iss := proxy.URL + "/v1/apps/agentic/" + ds.ProjectID() + "/" + ds.MCPServerID()
	_, err := p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL, "iss": iss}))
	require.NoError(t, err)

	huge.Store(true)
	ds.RotateKey()
	_, err = p.VerifyToken(context.Background(), ds.Mint(map[string]any{"aud": resourceURL, "iss": iss}))
	var te *auth.TokenError
	require.True(t, errors.As(err, &te))
	assert.Equal(t, "unknown_key", te.Reason, "the oversized set was not taken")
	assert.True(t, p.KeyStatus().Failing)
	assert.Equal(t, 1, p.KeyStatus().Keys, "the old key stays")
}

func TestLogsCarryReasonsNeverTokens(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := descope.New(descope.Config{WellKnownURL: ds.WellKnownURL(), ServerURL: "https://mcp.example.com", Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	srv := httptest.NewServer(auth.Handler(p, http.NotFoundHandler(), auth.WithLogger(log)))
	t.Cleanup(srv.Close)

	expired := ds.Mint(map[string]any{"aud": resourceURL, "exp": time.Now().Add(-time.Hour).Unix()})
	foreign := ds.Mint(map[string]any{"aud": "https://other.example/mcp"})
	valid := ds.Mint(map[string]any{"aud": resourceURL})
	for _, tok := range []string{expired, foreign, valid} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	assert.Contains(t, out, "reason=expired")
	assert.Contains(t, out, "reason=audience")
	assert.Equal(t, 2, strings.Count(out, "auth: request refused"), "each refusal is logged once")
	for _, tok := range []string{expired, foreign, valid} {
		parts := strings.Split(tok, ".")
		for _, part := range parts {
			assert.NotContains(t, out, part, "a token part reached the log")
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
