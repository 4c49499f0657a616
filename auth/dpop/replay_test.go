package dpop

import (
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestReplayCacheFlood: 200,000 fresh jtis against a cache capped at
// 10,000 hold at most 10,000 entries, the rest are refused (fail closed,
// no live jti forgotten), and once the window passes the cache drains and
// accepts again.
func TestReplayCacheFlood(t *testing.T) {
	const max, flood = 10_000, 200_000
	c := newReplayCache(max)
	now := testNow
	expires := now.Add(5 * time.Minute)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	full := 0
	for i := range flood {
		err := c.add("tp", "jti-"+strconv.Itoa(i), expires, now)
		switch {
		case err == nil:
		case errors.Is(err, ErrCacheFull):
			full++
		default:
			t.Fatalf("jti %d: %v", i, err)
		}
	}
	if c.len() != max || full != flood-max {
		t.Fatalf("entries %d, refused %d; want %d and %d", c.len(), full, max, flood-max)
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// About 100 bytes an entry (32-byte key in the map and in the heap,
	// with a time.Time); 4 MB is a loose bound that 200,000 entries would
	// break.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 4<<20 {
		t.Errorf("heap grew %d bytes for %d entries", grown, max)
	}

	// A live jti is still refused as a replay, not forgotten.
	if err := c.add("tp", "jti-0", expires, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("live jti after the flood: %v", err)
	}
	// When the window has passed, everything expires and fresh jtis fit.
	later := expires.Add(time.Second)
	if err := c.add("tp", "fresh", later.Add(5*time.Minute), later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if c.len() != 1 {
		t.Fatalf("entries after expiry %d, want 1", c.len())
	}
}

// TestReplayCacheExpiresInOrder: entries leave when their own expiry
// passes, whatever order they came in.
func TestReplayCacheExpiresInOrder(t *testing.T) {
	c := newReplayCache(10)
	for i, d := range []time.Duration{3, 1, 2} {
		if err := c.add("tp", strconv.Itoa(i), testNow.Add(d*time.Minute), testNow); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.add("tp", "1", testNow.Add(time.Hour), testNow.Add(90*time.Second)); err != nil {
		t.Fatalf("jti 1 expired at +1m but is still held: %v", err)
	}
	if err := c.add("tp", "2", testNow.Add(time.Hour), testNow.Add(90*time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("jti 2 expires at +2m, want replay, got %v", err)
	}
	if err := c.add("other-key", "2", testNow.Add(time.Hour), testNow.Add(90*time.Second)); err != nil {
		t.Fatalf("same jti under another key: %v", err)
	}
}

// TestVerifyFailsClosedWhenFull: through Verify, a full cache refuses new
// proofs with ErrCacheFull, which is also ErrInvalidProof; after the iat
// window the same verifier accepts again.
func TestVerifyFailsClosedWhenFull(t *testing.T) {
	now := testNow
	v := newTestVerifier(t, Options{MaxReplayEntries: 2, Now: func() time.Time { return now }})
	for i := range 2 {
		p := mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: now})
		if _, err := v.Verify(t.Context(), p, testRequest()); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	p := mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: now})
	_, err := v.Verify(t.Context(), p, testRequest())
	checkRefusal(t, err, ErrCacheFull, "cache_full")

	now = now.Add(5*time.Minute + time.Second)
	p = mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: now})
	if _, err := v.Verify(t.Context(), p, testRequest()); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
