package auth

import (
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"

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
	assert.Zero(t, s.ReadTimeout)
	assert.Zero(t, s.WriteTimeout)
}
