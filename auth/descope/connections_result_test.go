package descope_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// connectServer is an MCP server whose tool "calendar" needs the caller's
// connection to the outbound app "calendar", served behind the middleware
// against descopetest's vault.
type connectServer struct {
	ds  *descopetest.Server
	url string // the MCP endpoint
}

func newConnectServer(t *testing.T) *connectServer {
	t.Helper()
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	p, err := descope.New(descope.Config{WellKnownURL: ds.WellKnownURL(), ServerURL: srv.URL})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	conns, err := p.Connections(descope.ConnectionsConfig{})
	require.NoError(t, err)
	s := server.NewMCPServer("connect-test", "1.0.0")
	s.AddTool(mcp.NewTool("calendar"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tok, err := conns.Token(ctx, descope.ConnectionRequest{App: "calendar", Scopes: []string{"events.read"}})
		if err != nil {
			return descope.ConnectionToolResult(ctx, req, err)
		}
		return mcp.NewToolResultText("connected, a " + tok.Type + " token for " + strings.Join(tok.Scopes, " ")), nil
	})
	handler = auth.Handler(p, server.NewStreamableHTTPServer(s, auth.SessionBinding(nil)))
	return &connectServer{ds: ds, url: p.ProtectedResource().URL}
}

// follow opens a connect link as the user's browser would.
func follow(t *testing.T, link string) {
	t.Helper()
	resp, err := http.Get(link)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

// elicitor answers URL-mode elicitations: it records them, follows the
// link when told to, and answers with action.
type elicitor struct {
	t      *testing.T
	open   bool
	action mcp.ElicitationResponseAction
	asked  atomic.Int32
	last   atomic.Pointer[mcp.ElicitationParams]
}

func (e *elicitor) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	e.asked.Add(1)
	e.last.Store(&req.Params)
	if e.open {
		follow(e.t, req.Params.URL)
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: e.action}}, nil
}

// connectClient starts an mcp-go client of era ("" for 2026-07-28) for
// token, declaring URL-mode elicitation when e is not nil.
func connectClient(t *testing.T, ctx context.Context, url, token, era string, e *elicitor) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	require.NoError(t, err)
	var opts []client.ClientOption
	if era != "" {
		opts = append(opts, client.WithProtocolVersion(era))
	}
	if e != nil {
		opts = append(opts, client.WithElicitationHandler(e),
			client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{URL: &struct{}{}}}))
	}
	c := client.NewClient(tr, opts...)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "connect-test", Version: "1"}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if era != "" {
		init.Params.ProtocolVersion = era
	}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	return c
}

func callCalendar(t *testing.T, ctx context.Context, c *client.Client) (text string, isError bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = "calendar"
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	require.Len(t, res.Content, 1)
	return res.Content[0].(mcp.TextContent).Text, res.IsError
}

var eras = []struct{ name, version string }{
	{"2026-07-28", ""},
	{"2025-11-25", mcp.ProtocolVersion20251125},
}

// TestConnectionToolResultElicits: a client that takes URL-mode
// elicitation is asked, once, to open the connect link; when the user
// connected by the time they answer, the same call succeeds, in both eras
// (2026-07-28 through an input request and the client's retry, 2025-11-25
// through mcp-go's elicitation/create on the call's stream).
func TestConnectionToolResultElicits(t *testing.T) {
	const connected = "connected, a Bearer token for events.read"
	link := regexp.MustCompile(`^http://127\.0\.0\.1:\d+/outbound/connect/[A-Za-z0-9_-]+$`)
	tests := []struct {
		name   string
		open   bool
		action mcp.ElicitationResponseAction
		want   *regexp.Regexp
		isErr  bool
	}{
		{"the user connects", true, mcp.ElicitationResponseActionAccept, regexp.MustCompile(`^` + connected + `$`), false},
		{"the user has not finished", false, mcp.ElicitationResponseActionAccept,
			regexp.MustCompile(`^calendar is not connected yet\. Finish connecting it at http://\S+/outbound/connect/\S+, then call this tool again\.$`), true},
		{"the user declines", false, mcp.ElicitationResponseActionDecline,
			regexp.MustCompile(`^This tool needs calendar, and connecting it was declined\. To connect it later, open http://\S+/outbound/connect/\S+\.$`), true},
	}
	for _, era := range eras {
		for _, tt := range tests {
			t.Run(era.name+"/"+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cs := newConnectServer(t)
				token := cs.ds.Mint(map[string]any{"aud": cs.url, "scope": descope.ScopeOutboundTokenFetch})
				e := &elicitor{t: t, open: tt.open, action: tt.action}
				c := connectClient(t, ctx, cs.url, token, era.version, e)

				text, isErr := callCalendar(t, ctx, c)
				assert.Regexp(t, tt.want, text)
				assert.Equal(t, tt.isErr, isErr)
				require.EqualValues(t, 1, e.asked.Load(), "asked once")
				p := e.last.Load()
				assert.Equal(t, mcp.ElicitationModeURL, p.Mode)
				assert.Regexp(t, link, p.URL)
				assert.Regexp(t, `^[0-9a-f]{32}$`, p.ElicitationID)
				assert.Equal(t, "This tool needs your calendar account. Connect it in your browser.", p.Message)

				if !tt.open {
					// The link still works afterwards, and then so does the tool.
					follow(t, p.URL)
				}
				text, isErr = callCalendar(t, ctx, c)
				assert.Equal(t, connected, text)
				assert.False(t, isErr)
				assert.EqualValues(t, 1, e.asked.Load(), "not asked again once connected")
			})
		}
	}
}

// TestConnectionToolResultLink: a client without URL-mode elicitation
// gets the link in a tool error; once the user followed it, the retried
// call succeeds. Another user holding the same tool gets a link of their
// own, and following the first user's link connects nobody else.
func TestConnectionToolResultLink(t *testing.T) {
	want := regexp.MustCompile(`^This tool needs your calendar account\. Connect it at (http://127\.0\.0\.1:\d+/outbound/connect/[A-Za-z0-9_-]+), then call this tool again\.$`)
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cs := newConnectServer(t)
			alice := connectClient(t, ctx, cs.url, cs.ds.Mint(map[string]any{"aud": cs.url, "sub": "U2alice", "scope": descope.ScopeOutboundTokenFetch}), era.version, nil)
			bob := connectClient(t, ctx, cs.url, cs.ds.Mint(map[string]any{"aud": cs.url, "sub": "U2bob", "scope": descope.ScopeOutboundTokenFetch}), era.version, nil)

			text, isErr := callCalendar(t, ctx, alice)
			m := want.FindStringSubmatch(text)
			require.NotNil(t, m, text)
			assert.True(t, isErr)
			bobText, _ := callCalendar(t, ctx, bob)
			mb := want.FindStringSubmatch(bobText)
			require.NotNil(t, mb, bobText)
			assert.NotEqual(t, m[1], mb[1], "each user gets a link of their own")

			follow(t, m[1])
			text, isErr = callCalendar(t, ctx, alice)
			assert.Equal(t, "connected, a Bearer token for events.read", text)
			assert.False(t, isErr)
			bobText, isErr = callCalendar(t, ctx, bob)
			assert.Regexp(t, want, bobText, "alice's connection is not bob's")
			assert.True(t, isErr)
		})
	}
}

// TestConnectionToolResultTexts: each kind of failure becomes a tool error
// that says what the user can do, names the app, and carries nothing of
// Descope's answer or the cause; other errors pass through.
func TestConnectionToolResultTexts(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:443: secret-internal-detail")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"not connected, no link", &descope.ConnectionError{Kind: descope.ErrNotConnected, App: "github", Code: "E111504", Err: cause},
			"This tool needs your github account, which is not connected, and no link to connect it could be made right now. Try again later."},
		{"not connected, link, client without URL elicitation",
			&descope.ConnectionError{Kind: descope.ErrNotConnected, App: "github", ConnectURL: "https://api.descope.com/connect/x", Err: cause},
			"This tool needs your github account. Connect it at https://api.descope.com/connect/x, then call this tool again."},
		{"the tenant's connection", &descope.ConnectionError{Kind: descope.ErrNotConnected, App: "jira", Tenant: "T1", TenantWide: true, Code: "E111504"},
			"This tool needs jira connected for your tenant, which it is not. Ask your tenant's administrator to connect it."},
		{"the user's, in a tenant", &descope.ConnectionError{Kind: descope.ErrNotConnected, App: "jira", Tenant: "T1", Code: "E111504"},
			"This tool needs your jira account connected in your tenant, which it is not. Connect it in the tenant's Descope settings, or ask its administrator."},
		{"missing scope", &descope.ConnectionError{Kind: descope.ErrConnectionScope, App: "github", Scope: descope.ScopeOutboundTokenFetch},
			"This tool needs the outbound.token.fetch scope, which your sign-in did not grant. Sign in again and allow it."},
		{"unavailable", &descope.ConnectionError{Kind: descope.ErrConnectionUnavailable, App: "github", Err: cause},
			"Your github token cannot be fetched right now. Try again in a moment."},
		{"refused", &descope.ConnectionError{Kind: descope.ErrConnectionRefused, App: "github", Code: "E011003", Err: cause},
			"Descope did not hand out your github token. Ask the server's administrator to check the app's connection settings."},
		{"wrapped", errors.Join(errors.New("calendar tool"), &descope.ConnectionError{Kind: descope.ErrConnectionUnavailable, App: "github"}),
			"Your github token cannot be fetched right now. Try again in a moment."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := descope.ConnectionToolResult(context.Background(), mcp.CallToolRequest{}, tt.err)
			require.NoError(t, err)
			require.True(t, res.IsError)
			require.Len(t, res.Content, 1)
			text := res.Content[0].(mcp.TextContent).Text
			assert.Equal(t, tt.want, text)
			assert.NotContains(t, text, "secret-internal")
			assert.NotContains(t, text, "E0")
		})
	}
	res, err := descope.ConnectionToolResult(context.Background(), mcp.CallToolRequest{}, cause)
	assert.Nil(t, res)
	assert.Same(t, cause, err)
}
