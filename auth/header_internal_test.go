package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth/internal/caller"
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

// recordingProvider accepts nothing and remembers the tokens it was shown.
type recordingProvider struct {
	mu   sync.Mutex
	seen []string
	dpop DPoP
}

func (p *recordingProvider) VerifyToken(_ context.Context, token string) (*Claims, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, token)
	return nil, Invalid("test", nil)
}

func (p *recordingProvider) ProtectedResource() ProtectedResource {
	return ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", DPoP: p.dpop}
}

func (p *recordingProvider) Routes() []Route { return nil }

// syntaxProvider is recorded as checking token syntax itself.
type syntaxProvider struct{ recordingProvider }

func init() { caller.ChecksTokenSyntax(&syntaxProvider{}) }

// wrappedProvider embeds a provider that checks token syntax, and may
// verify tokens in its own way before it hands them on.
type wrappedProvider struct{ *syntaxProvider }

// A provider recorded as checking token syntax itself is shown what a
// b64token check would refuse; any other provider never is, not even one
// that embeds a recorded one. None is shown an empty token, and all
// refusals look alike on the wire.
func TestOnlySyntaxCheckingProvidersSeeUncheckedTokens(t *testing.T) {
	plain, checking := &recordingProvider{}, &syntaxProvider{}
	wrapped := &wrappedProvider{&syntaxProvider{}}
	require.False(t, caller.ChecksSyntax(plain))
	require.True(t, caller.ChecksSyntax(checking))
	require.False(t, caller.ChecksSyntax(wrapped))
	tokens := []string{"a~b", "abc", "a b", "a=b", "a\"b", "a,b", "a%2Eb", "abc="}
	for _, p := range []AuthProvider{plain, checking, wrapped} {
		h := Middleware(p)(http.NotFoundHandler())
		for _, tok := range append(tokens, "", "   ") {
			r := httptest.NewRequest(http.MethodGet, "https://mcp.example.com/mcp", nil)
			r.Header[headerAuthorize] = []string{"Bearer " + tok}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "%q", tok)
			assert.Equal(t, `Bearer error="invalid_token", error_description="`+descInvalidToken+
				`", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`,
				w.Header().Get(headerChallenge), "%q", tok)
		}
	}
	b64tokens := []string{"a~b", "abc", "abc="}
	assert.Equal(t, b64tokens, plain.seen, "only b64tokens")
	assert.Equal(t, b64tokens, wrapped.seen, "only b64tokens")
	assert.Equal(t, tokens, checking.seen, "every non-empty token as it came")
}

// When DPoP is required or disabled, a token with bytes no JWT has is
// refused for its scheme before anyone looks at its bytes if the provider
// checks them itself, and for its bytes otherwise: 401 either way, each
// with the fixed answer of its reason, and no provider is shown it.
func TestSchemeRefusalsOfMalformedTokens(t *testing.T) {
	const prm = `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
	const algs = `DPoP algs="ES256"`
	tests := []struct {
		mode          DPoPMode
		authorization string
		checked       string // answer when the middleware checks the bytes
		unchecked     string // answer when the provider does
		challenges    [2][]string
	}{
		{DPoPRequired, "Bearer a b", bodyInvalidToken, bodyDPoPRequired, [2][]string{
			{algs + `, error="invalid_token", error_description="` + descInvalidToken + `", ` + prm},
			{algs + `, error="invalid_token", error_description="` + descDPoPRequired + `", ` + prm},
		}},
		{DPoPDisabled, "DPoP a b", bodyInvalidToken, bodyNoToken, [2][]string{
			{`Bearer error="invalid_token", error_description="` + descInvalidToken + `", ` + prm},
			{`Bearer ` + prm},
		}},
	}
	for _, tc := range tests {
		dpop := DPoP{Mode: tc.mode, Algorithms: []string{"ES256"}}
		plain := &recordingProvider{dpop: dpop}
		checking := &syntaxProvider{recordingProvider{dpop: dpop}}
		for i, p := range []AuthProvider{plain, checking} {
			r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", nil)
			r.Header[headerAuthorize] = []string{tc.authorization}
			w := httptest.NewRecorder()
			Middleware(p)(http.NotFoundHandler()).ServeHTTP(w, r)
			want := []string{tc.checked, tc.unchecked}[i]
			assert.Equal(t, http.StatusUnauthorized, w.Code, "%s %q", tc.mode, tc.authorization)
			assert.Equal(t, want, w.Body.String(), "%s %q", tc.mode, tc.authorization)
			assert.Equal(t, tc.challenges[i], w.Header()[headerChallenge], "%s %q", tc.mode, tc.authorization)
		}
		assert.Empty(t, plain.seen)
		assert.Empty(t, checking.seen)
	}
}
