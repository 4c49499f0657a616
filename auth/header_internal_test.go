package auth

import (
	"net/textproto"
	"testing"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
)

// The middleware looks these headers up in the request's map directly
// (headerValue, h[key]): a key not in canonical form would find nothing,
// and a request would pass as if it carried no such header.
func TestHeaderKeysAreCanonical(t *testing.T) {
	for _, key := range []string{headerAuthorize, headerOrigin, headerSessionID, headerLastEventID,
		headerDPoP, headerChallenge, headerContentType, headerRetryAfter} {
		assert.Equal(t, textproto.CanonicalMIMEHeaderKey(key), key)
	}
	assert.Equal(t, server.HeaderKeySessionID, headerSessionID, "mcp-go's session header")
}
