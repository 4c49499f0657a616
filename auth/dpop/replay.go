package dpop

// replay.go remembers accepted proofs until their iat window has passed, so
// each (key, jti) is accepted once. It holds at most max entries and fails
// closed when full: forgetting a live jti would let its proof be replayed.

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// replayKey is SHA-256(thumbprint, 0, jti): fixed-size whatever the jti's
// length (RFC 9449 §11.1), and one client cannot burn another key's jtis.
type replayKey [sha256.Size]byte

type replayEntry struct {
	key     replayKey
	expires time.Time
}

// expiryHeap orders entries by expiry so the expired ones are dropped from
// the top in O(log n) each, without a full scan per request.
type expiryHeap []replayEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type replayCache struct {
	mu      sync.Mutex
	max     int
	seen    map[replayKey]struct{}
	byExpry expiryHeap
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[replayKey]struct{})}
}

// add records key until expires. It returns ErrReplay if key is live and
// ErrCacheFull if max live entries are held.
func (c *replayCache) add(thumbprint, jti string, expires, now time.Time) error {
	h := sha256.New()
	h.Write([]byte(thumbprint))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k replayKey
	h.Sum(k[:0])

	c.mu.Lock()
	defer c.mu.Unlock()
	evicted := false
	for len(c.byExpry) > 0 && !c.byExpry[0].expires.After(now) {
		delete(c.seen, heap.Pop(&c.byExpry).(replayEntry).key)
		evicted = true
	}
	if evicted && len(c.seen) == 0 {
		// Go maps never shrink; start afresh once a flood has drained so
		// its peak does not pin memory.
		c.seen = make(map[replayKey]struct{})
		c.byExpry = nil
	}
	if _, ok := c.seen[k]; ok {
		return &ProofError{Kind: ErrReplay, Reason: "replay"}
	}
	if len(c.seen) >= c.max {
		return &ProofError{Kind: ErrCacheFull, Reason: "cache_full"}
	}
	c.seen[k] = struct{}{}
	heap.Push(&c.byExpry, replayEntry{key: k, expires: expires})
	return nil
}

// len reports the live entries held, for tests.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
