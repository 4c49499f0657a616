package descope_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// TestConnectionsAgainstTheFakeVault: the whole hand-off against
// descopetest's vault, at the provider's own Descope origin: not connected,
// the link, the user follows it, the retried call gets the token, then the
// cache answers.
func TestConnectionsAgainstTheFakeVault(t *testing.T) {
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	p, err := descope.New(descope.Config{WellKnownURL: ds.WellKnownURL(), ServerURL: "https://mcp.example.com"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	conns, err := p.Connections(descope.ConnectionsConfig{})
	require.NoError(t, err)
	req := descope.ConnectionRequest{App: "google-calendar", Scopes: []string{"calendar.read"}}
	srv := httptest.NewServer(auth.Handler(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := conns.Token(r.Context(), req)
		var ce *descope.ConnectionError
		switch {
		case err == nil:
			_, _ = fmt.Fprintf(w, "token %s %v %t", tok.Type, tok.Scopes, tok.Expiry.After(time.Now()))
		case assert.ErrorAs(t, err, &ce):
			_, _ = fmt.Fprintf(w, "error %v link %s", ce.Kind, ce.ConnectURL)
		}
	})))
	t.Cleanup(srv.Close)
	call := func(token string) string {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{}`))
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tok := ds.Mint(map[string]any{"aud": []string{resourceURL}, "scope": "outbound.token.fetch"})

	got := call(tok)
	m := regexp.MustCompile(`^error descope: the user has not connected this app link (http://\S+)$`).FindStringSubmatch(got)
	require.NotNil(t, m, got)
	resp, err := http.Get(m[1])
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	assert.Equal(t, "token Bearer [calendar.read] true", call(tok))
	hits := ds.OutboundTokenRequests()
	assert.Equal(t, "token Bearer [calendar.read] true", call(tok))
	assert.Equal(t, hits, ds.OutboundTokenRequests(), "served from the cache")

	// Another user, even holding the link's app, is not connected.
	other := descopetest.User{Subject: "U2someoneelse00000000000000"}
	ds.SetUser(other)
	assert.Contains(t, call(ds.Mint(map[string]any{"aud": []string{resourceURL}, "scope": "outbound.token.fetch"})), "has not connected")

	// The vault down: retryable.
	ds.SetOutboundFault(descopetest.FaultUnavailable)
	ds.ConnectOutboundApp(other.Subject, "google-calendar", "calendar.read")
	assert.Contains(t, call(ds.Mint(map[string]any{"aud": []string{resourceURL}, "scope": "outbound.token.fetch"})), "cannot be fetched right now")
}
