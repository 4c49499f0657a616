package descope_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
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

// vaultEnv is a protected endpoint whose handler asks Connections, made
// fresh for each use so that its cache starts empty, for a token of the
// fake's user; it answers what Token returned.
type vaultEnv struct {
	ds    *descopetest.Server
	srv   *httptest.Server
	logs  lockedBuffer
	token string
}

func newVaultEnv(t *testing.T, fetchTimeout time.Duration, scope string) *vaultEnv {
	t.Helper()
	e := &vaultEnv{ds: descopetest.NewServer()}
	t.Cleanup(e.ds.Close)
	log := slog.New(slog.NewTextHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := descope.New(descope.Config{WellKnownURL: e.ds.WellKnownURL(), ServerURL: "https://mcp.example.com",
		FetchTimeout: fetchTimeout, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	conns, err := p.Connections(descope.ConnectionsConfig{})
	require.NoError(t, err)
	e.srv = httptest.NewServer(auth.Handler(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := conns.Token(r.Context(), descope.ConnectionRequest{App: "slack", Scopes: []string{"chat:write"}})
		if err != nil {
			var ce *descope.ConnectionError
			require.ErrorAs(t, err, &ce)
			_, _ = fmt.Fprintf(w, "error %v", ce.Kind)
			return
		}
		_, _ = fmt.Fprintf(w, "token %s %d", tok.AccessToken, tok.Expiry.Unix())
	}), auth.WithLogger(log)))
	t.Cleanup(e.srv.Close)
	e.token = e.ds.Mint(map[string]any{"aud": []string{resourceURL}, "scope": scope})
	return e
}

func (e *vaultEnv) call(t *testing.T) string {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mcp", strings.NewReader(`{}`))
	r.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConnectionsVaultShapes, against descopetest's vault: every form of
// accessTokenExpiry is read; concurrent misses make one request; a token
// without outbound.token.fetch makes none; a vault that never answers ends
// in the retryable kind; no token reaches the logs.
func TestConnectionsVaultShapes(t *testing.T) {
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	forms := []struct {
		name   string
		format func(time.Time) any
	}{
		{"seconds", func(e time.Time) any { return e.Unix() }},
		{"numeric string", func(e time.Time) any { return fmt.Sprint(e.Unix()) }},
		{"RFC 3339", func(e time.Time) any { return e.UTC().Format(time.RFC3339) }},
		{"milliseconds", func(e time.Time) any { return e.UnixMilli() }},
	}
	for _, f := range forms {
		t.Run("expiry as "+f.name, func(t *testing.T) {
			e := newVaultEnv(t, 0, descope.ScopeOutboundTokenFetch)
			e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
			e.ds.SetOutboundExpiryFormat(func(time.Time) any { return f.format(expiry) })
			got := e.call(t)
			assert.Regexp(t, fmt.Sprintf(`^token tp-\S+ %d$`, expiry.Unix()), got)
			assert.NotContains(t, e.logs.String(), strings.Fields(got)[1], "the third-party token is not logged")
			assert.NotContains(t, e.logs.String(), e.token, "the access token is not logged")
		})
	}

	t.Run("concurrent misses", func(t *testing.T) {
		e := newVaultEnv(t, 0, descope.ScopeOutboundTokenFetch)
		e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
		e.ds.SetOutboundDelay(200 * time.Millisecond) // so that the calls overlap
		var wg sync.WaitGroup
		answers := make([]string, 8)
		for i := range answers {
			wg.Add(1)
			go func() { defer wg.Done(); answers[i] = e.call(t) }()
		}
		wg.Wait()
		for _, a := range answers {
			assert.Equal(t, answers[0], a)
		}
		assert.Regexp(t, `^token tp-`, answers[0])
		assert.EqualValues(t, 1, e.ds.OutboundTokenRequests(), "one fetch for all")
	})

	t.Run("no outbound.token.fetch", func(t *testing.T) {
		e := newVaultEnv(t, 0, "notes:read")
		e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
		assert.Equal(t, "error "+descope.ErrConnectionScope.Error(), e.call(t))
		assert.Zero(t, e.ds.OutboundTokenRequests(), "nothing sent")
	})

	// Without the fetch timeout the call would hang, and the test with it.
	t.Run("the vault never answers", func(t *testing.T) {
		e := newVaultEnv(t, 300*time.Millisecond, descope.ScopeOutboundTokenFetch)
		e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
		e.ds.SetOutboundFault(descopetest.FaultHang)
		assert.Equal(t, "error "+descope.ErrConnectionUnavailable.Error(), e.call(t))
		e.ds.SetOutboundFault(descopetest.FaultNone)
		assert.Regexp(t, `^token tp-`, e.call(t), "not cached: the next call asks again")
	})
}
