package descope

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
)

func TestTokenCacheExpiry(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newTokenCache(100, time.Minute)
	tests := []struct {
		name    string
		exp     time.Time
		at      time.Duration // when get is called, after t0
		wantHit bool
	}{
		{"fresh", t0.Add(time.Hour), time.Second, true},
		{"at token expiry", t0.Add(10 * time.Second), 10 * time.Second, false},
		{"past token expiry", t0.Add(10 * time.Second), 11 * time.Second, false},
		{"just before token expiry", t0.Add(10 * time.Second), 9 * time.Second, true},
		{"past max age", t0.Add(time.Hour), time.Minute + time.Second, false},
		{"no expiry, within max age", time.Time{}, 30 * time.Second, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tokenKey(fmt.Sprint("token-", i))
			claims := &auth.Claims{Subject: tc.name, ExpiresAt: tc.exp}
			c.put(&key, claims, "k1", t0)
			got, ok := c.get(&key, t0.Add(tc.at))
			assert.Equal(t, tc.wantHit, ok)
			if tc.wantHit {
				assert.Same(t, claims, got)
			}
		})
	}
}

func TestTokenCacheRefusesExpiredOnPut(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newTokenCache(100, time.Minute)
	key := tokenKey("old")
	c.put(&key, &auth.Claims{ExpiresAt: t0.Add(-time.Second)}, "k1", t0)
	assert.Zero(t, c.len())
}

func TestTokenCacheStaysWithinBound(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const size = 640
	c := newTokenCache(size, time.Hour)
	for i := 0; i < 20*size; i++ {
		key := tokenKey(fmt.Sprint("token-", i))
		c.put(&key, &auth.Claims{ExpiresAt: t0.Add(time.Duration(i) * time.Second)}, "k1", t0)
	}
	assert.LessOrEqual(t, c.len(), size)
	// The entries closest to expiry went first: the newest, longest-lived
	// token is still there.
	last := tokenKey(fmt.Sprint("token-", 20*size-1))
	_, ok := c.get(&last, t0)
	assert.True(t, ok)
	first := tokenKey("token-1")
	_, ok = c.get(&first, t0)
	assert.False(t, ok)
}

func TestTokenCacheDropsEntriesOfRemovedKeys(t *testing.T) {
	t0 := time.Now()
	c := newTokenCache(100, time.Hour)
	a, b := tokenKey("a"), tokenKey("b")
	c.put(&a, &auth.Claims{ExpiresAt: t0.Add(time.Hour)}, "old", t0)
	c.put(&b, &auth.Claims{ExpiresAt: t0.Add(time.Hour)}, "new", t0)
	c.keepOnly(map[string]bool{"new": true})
	_, ok := c.get(&a, t0)
	assert.False(t, ok)
	_, ok = c.get(&b, t0)
	assert.True(t, ok)
}

// TestTokenCacheRefusesEntriesOfKeysAlreadyGone: a token whose check began
// with the old key set may finish after the new set has been installed and
// the cache swept; it must not be cached then, or it would outlive the key
// that signed it by up to TokenCacheMaxAge.
func TestTokenCacheRefusesEntriesOfKeysAlreadyGone(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name    string
		kids    map[string]bool // the key set installed before put; nil: none yet
		kid     string
		wantHit bool
	}{
		{"key still published", map[string]bool{"new": true, "old": true}, "old", true},
		{"key gone before put", map[string]bool{"new": true}, "old", false},
		{"key of the new set", map[string]bool{"new": true}, "new", true},
		{"no key set installed yet", nil, "old", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(100, time.Hour)
			if tc.kids != nil {
				c.keepOnly(tc.kids)
			}
			k := tokenKey(tc.name)
			c.put(&k, &auth.Claims{ExpiresAt: t0.Add(time.Hour)}, tc.kid, t0)
			_, ok := c.get(&k, t0)
			assert.Equal(t, tc.wantHit, ok)
		})
	}
}

func TestTokenKeyIsTheSHA256(t *testing.T) {
	// The cache never holds the token: only its digest.
	k := tokenKey("abc")
	require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", fmt.Sprintf("%x", k))
}
