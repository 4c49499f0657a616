package descope_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// TestConnectionsAgainstTheFakeVault: the whole hand-off against
// descopetest's vault, at the provider's own Descope origin: not connected,
// the link, the user follows it, the retried call gets the token, then the
// cache answers.
func TestConnectionsAgainstTheFakeVault(t *testing.T) {
	e := newFakeVaultEnv(t, descope.ConnectionRequest{App: "google-calendar", Scopes: []string{"calendar.read"}}, 0)
	tok := e.userToken("outbound.token.fetch")
	connected := func(got string) {
		t.Helper()
		m := regexp.MustCompile(`^token tp-\S+ Bearer (\d+) \[calendar\.read\]$`).FindStringSubmatch(got)
		require.NotNil(t, m, got)
		exp, _ := strconv.ParseInt(m[1], 10, 64)
		assert.Greater(t, exp, time.Now().Unix(), "not yet expired")
	}

	got := e.call(t, tok)
	m := regexp.MustCompile(`^error kind="descope: the user has not connected this app" connect="(http://[^"]+)"`).FindStringSubmatch(got)
	require.NotNil(t, m, got)
	resp, err := http.Get(m[1])
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	connected(e.call(t, tok))
	hits := e.ds.OutboundTokenRequests()
	connected(e.call(t, tok))
	assert.Equal(t, hits, e.ds.OutboundTokenRequests(), "served from the cache")

	// Another user, even holding the link's app, is not connected.
	other := descopetest.User{Subject: "U2someoneelse00000000000000"}
	e.ds.SetUser(other)
	assert.Contains(t, e.call(t, e.userToken("outbound.token.fetch")), "has not connected")

	// The vault down: retryable.
	e.ds.SetOutboundFault(descopetest.FaultUnavailable)
	e.ds.ConnectOutboundApp(other.Subject, "google-calendar", "calendar.read")
	assert.Contains(t, e.call(t, e.userToken("outbound.token.fetch")), "cannot be fetched right now")
}

// TestConnectionsVaultShapes, against descopetest's vault: every form of
// accessTokenExpiry is read; concurrent misses make one request; a token
// without outbound.token.fetch makes none; a vault that never answers ends
// in the retryable kind; no token reaches the logs.
func TestConnectionsVaultShapes(t *testing.T) {
	slack := descope.ConnectionRequest{App: "slack", Scopes: []string{"chat:write"}}
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
			e := newFakeVaultEnv(t, slack, 0)
			e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
			e.ds.SetOutboundExpiryFormat(func(time.Time) any { return f.format(expiry) })
			token := e.userToken(descope.ScopeOutboundTokenFetch)
			got := e.call(t, token)
			assert.Regexp(t, fmt.Sprintf(`^token tp-\S+ Bearer %d \[chat:write\]$`, expiry.Unix()), got)
			assert.NotContains(t, e.logs.String(), strings.Fields(got)[1], "the third-party token is not logged")
			assert.NotContains(t, e.logs.String(), token, "the access token is not logged")
		})
	}

	t.Run("concurrent misses", func(t *testing.T) {
		e := newFakeVaultEnv(t, slack, 0)
		e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
		e.ds.SetOutboundDelay(200 * time.Millisecond) // so that the calls overlap
		token := e.userToken(descope.ScopeOutboundTokenFetch)
		var wg sync.WaitGroup
		answers := make([]string, 8)
		for i := range answers {
			wg.Add(1)
			go func() { defer wg.Done(); answers[i] = e.call(t, token) }()
		}
		wg.Wait()
		for _, a := range answers {
			assert.Equal(t, answers[0], a)
		}
		assert.Regexp(t, `^token tp-`, answers[0])
		assert.EqualValues(t, 1, e.ds.OutboundTokenRequests(), "one fetch for all")
	})

	t.Run("no outbound.token.fetch", func(t *testing.T) {
		e := newFakeVaultEnv(t, slack, 0)
		e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
		assert.Regexp(t, "^"+regexp.QuoteMeta(fmt.Sprintf("error kind=%q", descope.ErrConnectionScope.Error())), e.call(t, e.userToken("notes:read")))
		assert.Zero(t, e.ds.OutboundTokenRequests(), "nothing sent")
	})

	// Without the fetch timeout the call would hang, and the test with it.
	t.Run("the vault never answers", func(t *testing.T) {
		e := newFakeVaultEnv(t, slack, 300*time.Millisecond)
		e.ds.ConnectOutboundApp(e.ds.User().Subject, "slack", "chat:write")
		e.ds.SetOutboundFault(descopetest.FaultHang)
		token := e.userToken(descope.ScopeOutboundTokenFetch)
		assert.Regexp(t, "^"+regexp.QuoteMeta(fmt.Sprintf("error kind=%q", descope.ErrConnectionUnavailable.Error())), e.call(t, token))
		e.ds.SetOutboundFault(descopetest.FaultNone)
		assert.Regexp(t, `^token tp-`, e.call(t, token), "not cached: the next call asks again")
	})
}
