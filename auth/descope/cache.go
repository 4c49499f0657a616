package descope

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mcp-go-contrib/descope/auth"
)

// Token cache defaults.
const (
	DefaultTokenCacheSize   = 10_000
	DefaultTokenCacheMaxAge = 5 * time.Minute
)

// cacheShards spreads entries over independently locked maps, so that
// concurrent requests rarely wait on one another.
const cacheShards = 64

// tokenCache remembers verified tokens by the SHA-256 of the token (never
// the token itself) until the token expires or maxAge passes, whichever is
// first. Only tokens that passed every check are stored, so a flood of bad
// tokens cannot grow it; its size is bounded by the number of entries.
type tokenCache struct {
	maxAge   time.Duration
	perShard int
	// kids is the key set last passed to keepOnly (nil before the first).
	// put refuses a token of a key outside it: the token's check may have
	// begun with the key set before, and the sweep is over.
	kids   atomic.Pointer[map[string]bool]
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	claims  *auth.Claims
	expires time.Time // min(token expiry, insertion + maxAge)
	kid     string    // the key that signed the token
}

func newTokenCache(size int, maxAge time.Duration) *tokenCache {
	c := &tokenCache{maxAge: maxAge, perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]cacheEntry)
	}
	return c
}

// tokenKey hashes the token without copying it.
func tokenKey(token string) [sha256.Size]byte {
	// sha256.Sum256 only reads its argument, so viewing the string's bytes
	// in place is safe and saves an allocation per request.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

func (c *tokenCache) shard(key *[sha256.Size]byte) *cacheShard {
	return &c.shards[binary.LittleEndian.Uint64(key[:8])%cacheShards]
}

// get returns the claims of a cached, unexpired token.
func (c *tokenCache) get(key *[sha256.Size]byte, now time.Time) (*auth.Claims, bool) {
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.entries[*key]
	s.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.claims, true
}

// put stores a verified token. When the shard is full it first drops
// expired entries, then the entry closest to expiry: it is the one least
// worth keeping.
func (c *tokenCache) put(key *[sha256.Size]byte, claims *auth.Claims, kid string, now time.Time) {
	expires := now.Add(c.maxAge)
	if !claims.ExpiresAt.IsZero() && claims.ExpiresAt.Before(expires) {
		expires = claims.ExpiresAt
	}
	if !now.Before(expires) {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read under the shard lock: keepOnly publishes the new key set before
	// it sweeps this shard, so either the sweep sees this entry or this
	// sees the new set.
	if kids := c.kids.Load(); kids != nil && !(*kids)[kid] {
		return
	}
	if _, present := s.entries[*key]; !present && len(s.entries) >= c.perShard {
		var soonest [sha256.Size]byte
		var soonestAt time.Time
		for k, e := range s.entries {
			if !now.Before(e.expires) {
				delete(s.entries, k)
				continue
			}
			if soonestAt.IsZero() || e.expires.Before(soonestAt) {
				soonest, soonestAt = k, e.expires
			}
		}
		if len(s.entries) >= c.perShard {
			delete(s.entries, soonest)
		}
	}
	s.entries[*key] = cacheEntry{claims: claims, expires: expires, kid: kid}
}

// keepOnly drops the entries signed by a key that is no longer published,
// and keeps put from adding any later. kids must not change afterwards.
func (c *tokenCache) keepOnly(kids map[string]bool) {
	c.kids.Store(&kids)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.entries {
			if !kids[e.kid] {
				delete(s.entries, k)
			}
		}
		s.mu.Unlock()
	}
}

// len counts the entries, expired ones included.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
