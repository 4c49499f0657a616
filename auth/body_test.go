package auth

import (
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stallingBody yields a little, then fails like a connection that stopped.
type stallingBody struct{ sent bool }

func (b *stallingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		p[0] = '{'
		return 1, nil
	}
	return 0, errors.New("i/o timeout")
}

// TestBodyMemoryGrowsWithBytesReceived: a client announcing 8 MiB and
// sending one byte costs kilobytes, not the announced length.
func TestBodyMemoryGrowsWithBytesReceived(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 12 {
		_, err := readBody(&stallingBody{}, DefaultMaxBodyBytes, DefaultMaxBodyBytes)
		require.ErrorIs(t, err, errBodyUnreadable)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(2<<20), "12 stalled 8 MiB bodies allocated %d bytes", allocated)
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		announced int64
		max       int64
		err       error
	}{
		{"announced exactly", `{"a":1}`, 7, 100, nil},
		{"unannounced", `{"a":1}`, -1, 100, nil},
		{"at the cap", strings.Repeat("x", 100), 100, 100, nil},
		{"over the cap", strings.Repeat("x", 101), -1, 100, errBodyTooLarge},
		{"over the cap, announced under it", strings.Repeat("x", 101), 10, 100, errBodyTooLarge},
		{"larger than the first chunk", strings.Repeat("y", 3*firstChunk+5), -1, 4 * firstChunk, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(strings.NewReader(tc.body), tc.announced, tc.max)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.body, string(got))
		})
	}
}

// TestServerTimeouts: the server WithProvider builds bounds headers and
// idle connections, and sets no read or write timeout, which would cut
// response streams.
func TestServerTimeouts(t *testing.T) {
	s := newHTTPServer(http.NotFoundHandler())
	assert.Equal(t, DefaultReadHeaderTimeout, s.ReadHeaderTimeout)
	assert.Equal(t, DefaultIdleTimeout, s.IdleTimeout)
	assert.Equal(t, 64<<10, s.MaxHeaderBytes)
	assert.Zero(t, s.ReadTimeout)
	assert.Zero(t, s.WriteTimeout)
}

func TestMayNameTask(t *testing.T) {
	for params, want := range map[string]bool{
		`{"task":{}}`: true, `{"TASK":{}}`: true, `{"tAsK":1}`: true, `{"a":"kkk","task":1}`: true,
		`{"\u0074ask":1}`: true, `task`: true, `{"name":"echo"}`: false, `{"tas":"k"}`: false,
		`kask`: false, `ask`: false, ``: false, `{"k":"Kas"}`: false, `tsak`: false,
		`{"taſk":1}`: true, `{"tasK":1}`: true, `{"name":"é"}`: true, // folding: decoded to be sure
	} {
		assert.Equal(t, want, mayNameTask([]byte(params)), params)
	}
}

// TestEndedSessionsMemory: the memory of ended sessions stays bounded, and
// however many sessions others end, alice's ended session stays ended.
func TestEndedSessionsMemory(t *testing.T) {
	b := binderFor([]byte("ended sessions memory test secret"))
	now := time.Now()
	alice := b.generate("alice", now)
	b.end(alice, "alice", now, now)
	for o := range maxEndedSessions/maxEndedPerOwner + 8 {
		owner := "owner" + strconv.Itoa(o)
		for i := range maxEndedPerOwner + 3 {
			b.end(owner+"/"+strconv.Itoa(i), owner, now, now)
		}
	}
	assert.True(t, b.hasEnded(alice))
	assert.LessOrEqual(t, len(b.ended), maxEndedSessions)
	n := 0
	for _, ids := range b.byOwner {
		n += len(ids)
		assert.LessOrEqual(t, len(ids), maxEndedPerOwner)
	}
	assert.Equal(t, len(b.ended), n, "the index and the memory agree")
}
