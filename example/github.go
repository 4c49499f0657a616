package main

// github.go is the github_profile tool: it calls GitHub as the caller, with
// the caller's own GitHub token, which Descope keeps for them (a Descope
// connection, or outbound app). Dev mode serves a stand-in for GitHub's
// API that accepts the tokens the fake Descope hands out.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

const (
	// devGitHubApp is the outbound app dev mode's fake Descope connects.
	devGitHubApp = "github"
	// defaultGitHubAPI is where github_profile asks, unless GITHUB_API_URL
	// says otherwise (GitHub Enterprise, or dev mode's stand-in).
	defaultGitHubAPI = "https://api.github.com"
	// githubTimeout bounds one call to GitHub.
	githubTimeout = 10 * time.Second
	// maxGitHubReply is the most of GitHub's answer that is read.
	maxGitHubReply = 1 << 20
)

// githubScopes are the GitHub OAuth scopes the tool needs the user's
// connection to grant.
var githubScopes = []string{"read:user"}

// Tool errors of github_profile, fixed texts that name no address or
// library error.
const (
	msgGitHubUnreachable = "GitHub cannot be reached right now. Try again in a moment."
	msgGitHubRefused     = "GitHub refused your GitHub token. Connect GitHub again in Descope, then call this tool again."
)

// githubTool calls GitHub's API with the caller's connection token.
type githubTool struct {
	conns  *descope.Connections
	app    string // the outbound app's ID in Descope
	api    string // GitHub's API base URL
	client *http.Client
}

// githubProfile is what the tool reports: the two fields of GitHub's
// GET /user it needs, no more.
type githubProfile struct {
	Login string `json:"login"`
	Name  string `json:"name"`
}

// addTo registers github_profile. The middleware answers a token without
// outbound.token.fetch with 403 insufficient_scope, so that the client
// asks the user for it.
func (g *githubTool) addTo(s *server.MCPServer, pol *auth.Policy) {
	pol.AddTool(s, mcp.NewTool("github_profile",
		mcp.WithDescription("Shows your GitHub login and name, asking GitHub with your own GitHub account, which you connect once through Descope. "+
			"The first call asks you to connect it. Needs the "+descope.ScopeOutboundTokenFetch+" scope."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true), // it reaches GitHub
	), g.profile, auth.RequireScopes(descope.ScopeOutboundTokenFetch))
}

func (g *githubTool) profile(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	creq := descope.ConnectionRequest{App: g.app, Scopes: githubScopes}
	tok, err := g.conns.Token(ctx, creq)
	if err != nil {
		return descope.ConnectionToolResult(ctx, req, err)
	}
	ctx, cancel := context.WithTimeout(ctx, githubTimeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, g.api+"/user", nil)
	if err != nil {
		return mcp.NewToolResultError(msgGitHubUnreachable), nil
	}
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	r.Header.Set("Accept", "application/vnd.github+json")
	resp, err := g.client.Do(r)
	if err != nil {
		return mcp.NewToolResultError(msgGitHubUnreachable), nil
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		// Revoked at GitHub, or the connection was removed in Descope:
		// the cached token is of no use any more.
		g.conns.Forget(ctx, creq)
		return mcp.NewToolResultError(msgGitHubRefused), nil
	case resp.StatusCode != http.StatusOK:
		return mcp.NewToolResultError(msgGitHubUnreachable), nil
	}
	var p githubProfile
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxGitHubReply)).Decode(&p); err != nil || p.Login == "" {
		return mcp.NewToolResultError(msgGitHubUnreachable), nil
	}
	return jsonResult(p)
}

// newGitHubTool returns the tool for outbound app app at api, a URL
// checkGitHubAPI accepted (or dev mode's stand-in), or nil when app is
// empty (the server then has no github_profile).
func newGitHubTool(p *descope.Provider, app, api string) (*githubTool, error) {
	if app == "" {
		return nil, nil
	}
	conns, err := p.Connections(descope.ConnectionsConfig{})
	if err != nil {
		return nil, err
	}
	// No redirects: the user's token would follow them (Go keeps the
	// header for the same host on another port or scheme).
	client := &http.Client{Timeout: githubTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &githubTool{conns: conns, app: app, api: api, client: client}, nil
}

// checkGitHubAPI checks GITHUB_API_URL, where the user's GitHub token goes:
// https, or http on this machine. It returns the URL without a trailing
// slash.
func checkGitHubAPI(api string) (string, error) {
	u, err := url.Parse(api)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname()))) {
		return "", fmt.Errorf("GITHUB_API_URL %q: use an https URL such as %s (http only on this machine)", api, defaultGitHubAPI)
	}
	return strings.TrimRight(api, "/"), nil
}

// fakeGitHub is dev mode's stand-in for GitHub's API: GET /user answers
// for a token the fake Descope's vault handed out for devGitHubApp with
// read:user, as GitHub would; anything else gets GitHub's 401.
type fakeGitHub struct {
	ds  *descopetest.Server
	srv *http.Server
	url string
}

// startFakeGitHub serves the stand-in on a loopback port.
func startFakeGitHub(ds *descopetest.Server) (*fakeGitHub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeGitHub{ds: ds, url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /user", f.user)
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *fakeGitHub) user(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	subject, app, scopes, known := f.ds.OutboundToken(token)
	if !ok || !known || app != devGitHubApp || !slices.Contains(scopes, "read:user") {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"message":"Bad credentials","status":"401"}`)
		return
	}
	p := githubProfile{Login: "user-" + strings.ToLower(subject)}
	if subject == devUser.Subject {
		p = githubProfile{Login: "dev-user", Name: devUser.Name}
	}
	_ = json.NewEncoder(w).Encode(p)
}

// Close stops the stand-in.
func (f *fakeGitHub) Close() { _ = f.srv.Close() }
