// Command notes is a small MCP server that keeps private notes for each user
// who signs in with Descope. It shows everything an mcp-go server needs from
// this library: configuration from the environment, a protected streamable
// HTTP endpoint with its discovery documents, tools that read the caller, a
// declarative access policy (an OAuth scope with step-up, a Descope role and
// a permission in the caller's tenant), sessions bound to their user, a tool
// that calls GitHub as the signed-in user with their GitHub token from
// Descope's vault (Connections), and a graceful shutdown.
//
// Try it without a Descope account (dev mode):
//
//	go run ./example
//
// With no Descope project configured (DESCOPE_CONFIG_URL, DESCOPE_PROJECT_ID
// and DESCOPE_BASE_URL all unset), the server starts a built-in fake Descope
// on a loopback port, prints two ready-made access tokens and a curl command,
// and accepts tokens only from that fake. Dev mode is for your own machine:
// it refuses to start unless both ADDR and MCP_SERVER_URL are loopback
// addresses.
//
// Against a real Descope project, create an MCP Server in the Descope console
// with the scopes notes:read and notes:write and the MCP Server URL
// https://notes.example.com/mcp (it becomes the tokens' "aud", and must be
// MCP_SERVER_URL + "/mcp"), then:
//
//	DESCOPE_CONFIG_URL=https://api.descope.com/v1/apps/agentic/P.../MS.../.well-known/openid-configuration \
//	MCP_SERVER_URL=https://notes.example.com \
//	ADDR=:8080 \
//	go run ./example
//
// For notes_stats and tenant_report, give users the project role "admin",
// and a tenant role that holds the permission "reports.read".
//
// For github_profile, create an outbound app for GitHub in the Descope
// console (Connections) that requests the GitHub scope read:user, add the
// scope outbound.token.fetch to the MCP Server, and start the server with
// GITHUB_OUTBOUND_APP set to the outbound app's ID.
//
// Environment:
//
//	DESCOPE_CONFIG_URL       the MCP Server's discovery URL (or use the next two)
//	DESCOPE_PROJECT_ID       the Descope project ID, when DESCOPE_CONFIG_URL is not set
//	DESCOPE_BASE_URL         the Descope API base URL for DESCOPE_PROJECT_ID (optional)
//	MCP_SERVER_URL           this server's public base URL (default http://localhost:8080);
//	                         the MCP endpoint is MCP_SERVER_URL + "/mcp"
//	ADDR                     the address to listen on (default 127.0.0.1:8080)
//	DESCOPE_REQUIRED_SCOPES  scopes every request must carry (optional); notes:write
//	                         counts as notes:read
//	DESCOPE_SCOPES_SUPPORTED scopes advertised to clients (default notes:read notes:write)
//	DESCOPE_AUDIENCE         accepted "aud" values (default: the endpoint URL, MCP_SERVER_URL + "/mcp",
//	                         which must be the MCP Server URL set in the Descope console)
//	DESCOPE_ACCEPT_PROJECT_AUDIENCE
//	                         "true" also accepts tokens whose "aud" is the project ID (off by
//	                         default; risky: such a token may have been issued to any app of
//	                         the project)
//	DESCOPE_DPOP             "allowed" (default: bearer and DPoP-bound tokens), "required" (only
//	                         DPoP-bound tokens with a proof: a stolen token is useless without
//	                         the client's key) or "disabled" (bearer tokens only). A token bound
//	                         to a key is never accepted as a bearer token.
//	DESCOPE_DPOP_NONCES      "true" makes DPoP proofs carry a nonce this server issued; replicas
//	                         agree on nonces when they share MCP_SESSION_SECRET
//	MCP_ALLOWED_ORIGINS      browser origins allowed besides MCP_SERVER_URL's, comma-separated
//	                         (dev mode adds http://localhost:*, http://127.0.0.1:*, http://[::1]:*)
//	GITHUB_OUTBOUND_APP      the ID of a Descope outbound app (Connections) for GitHub; when set,
//	                         the server has the github_profile tool. Dev mode has it unless the
//	                         variable is set: empty turns it off (and outbound.token.fetch is
//	                         then not advertised)
//	GITHUB_API_URL           GitHub's API base URL (default https://api.github.com)
//	MCP_SESSION_SECRET       the key, at least 32 bytes, that binds each MCP session to the
//	                         user who opened it (optional; default: random at every start).
//	                         Replicas behind one load balancer must share it: a session
//	                         opened on one replica is unknown (404) to a replica with
//	                         another key, and to this server after a restart. Sessions
//	                         exist in protocol 2025-11-25 and older only.
//
// Tools, and what a caller needs to use them:
//
//	whoami         any signed-in user: the caller, as Descope describes them
//	list_notes     any signed-in user: the caller's own notes only
//	write_note     the notes:write scope; a token without it gets HTTP 403
//	               insufficient_scope naming notes:write, so the client can
//	               ask the user for it (step-up)
//	notes_stats    the project-wide Descope role "admin": user and note counts
//	tenant_report  the permission "reports.read" in the caller's current tenant
//	github_profile the outbound.token.fetch scope and a connected GitHub account:
//	               the caller's GitHub login and name, asked of GitHub with the
//	               caller's own GitHub token from Descope (see GITHUB_OUTBOUND_APP).
//	               A caller who has not connected GitHub is asked to, through
//	               URL-mode elicitation when their client supports it, or
//	               gets the link as the tool's answer
//
// A user who lacks a role or permission does not see the tool in tools/list,
// and calling it anyway gets a tool error that names nothing they lack.
//
// Connect MCP Inspector (npx @modelcontextprotocol/inspector) with transport
// "Streamable HTTP" and the URL MCP_SERVER_URL + "/mcp"; it signs in through
// Descope (or the fake in dev mode) by itself.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

const (
	defaultServerURL = "http://localhost:8080"
	defaultAddr      = "127.0.0.1:8080"
	shutdownTimeout  = 10 * time.Second

	// minSessionSecretBytes is the shortest MCP_SESSION_SECRET accepted: it
	// is an HMAC key, and a short one could be guessed.
	minSessionSecretBytes = 32
)

func main() {
	if err := run(); err != nil {
		// One line, no stack trace: startup errors are configuration
		// mistakes the operator has to fix.
		fmt.Fprintln(os.Stderr, "notes: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := envOr("ADDR", defaultAddr)
	cfg := descope.ConfigFromEnv()
	if cfg.ServerURL == "" {
		cfg.ServerURL = defaultServerURL
	}
	if len(cfg.ScopesSupported) == 0 {
		cfg.ScopesSupported = []string{scopeRead, scopeWrite}
	}

	secret, err := sessionSecret()
	if err != nil {
		return err
	}
	if secret != nil && cfg.DPoP.Nonces {
		// Replicas sharing the session secret must agree on nonces too.
		cfg.DPoP.NonceSecret = nonceSecret(secret)
	}

	dev := devMode()
	if dev {
		if err := checkDevAddresses(cfg.ServerURL, addr); err != nil {
			return err
		}
	}
	// Listening first means a port in use is reported before anything is
	// printed, and the banner appears only once the server accepts
	// connections.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()

	var issuer *descopetest.Server
	githubApp, githubSet := os.LookupEnv("GITHUB_OUTBOUND_APP")
	githubApp, githubAPI := strings.TrimSpace(githubApp), envOr("GITHUB_API_URL", defaultGitHubAPI)
	if githubApp != "" {
		// Before anything starts, like every configuration mistake.
		if githubAPI, err = checkGitHubAPI(githubAPI); err != nil {
			return err
		}
	}
	if dev {
		issuer = startDevIssuer()
		defer issuer.Close()
		cfg.WellKnownURL = issuer.WellKnownURL()
		if !githubSet {
			// Dev mode connects the fake's own GitHub stand-in, unless
			// GITHUB_OUTBOUND_APP is set (empty turns the tool off).
			fake, err := startFakeGitHub(issuer)
			if err != nil {
				return err
			}
			defer fake.Close()
			githubApp, githubAPI = devGitHubApp, fake.url
		}
	}

	p, err := descope.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	if issuer != nil {
		// What the Descope console's MCP Server URL does: tokens for which
		// the client names no resource are bound to this endpoint.
		issuer.SetMCPServerURL(p.ProtectedResource().URL)
	}

	// One policy serves both layers: the MCP server hides and guards the
	// tools, and the middleware refuses a call whose scopes the token
	// lacks with 403 insufficient_scope before it reaches the server.
	pol := newPolicy()
	mcpSrv := newMCPServer(newStore(), pol)
	github, err := newGitHubTool(p, githubApp, githubAPI)
	if err != nil {
		return err
	}
	if github != nil {
		github.addTo(mcpSrv, pol)
	}
	// With a listener of our own, auth.Handler serves the protected
	// endpoint and the discovery documents; auth.WithProvider does the same
	// for server.StreamableHTTPServer.Start. Served this way, the session
	// binding must be passed to the StreamableHTTPServer explicitly.
	mcpServer := server.NewStreamableHTTPServer(mcpSrv, auth.SessionBinding(secret))
	opts := []auth.Option{auth.WithPolicy(pol)}
	if origins := allowedOrigins(dev, p.ProtectedResource().URL); origins != nil {
		opts = append(opts, auth.WithAllowedOrigins(origins...))
	}
	// No ReadTimeout or WriteTimeout: they would cut the SSE streams,
	// which end with their token instead. The middleware bounds body reads.
	httpServer := &http.Server{Handler: auth.Handler(p, mcpServer, opts...),
		ReadHeaderTimeout: auth.DefaultReadHeaderTimeout, IdleTimeout: auth.DefaultIdleTimeout}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()

	if issuer != nil {
		fakeGitHub := ""
		if github != nil {
			fakeGitHub = github.api
		}
		printDevBanner(os.Stdout, issuer, p, fakeGitHub)
	} else {
		fmt.Printf("notes: MCP endpoint %s (tokens from %s), listening on %s\n",
			p.ProtectedResource().URL, p.Issuer(), addr)
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal now ends the process at once

	fmt.Println("notes: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Close the MCP sessions (ending open streams), then stop the listener.
	if err := mcpServer.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := httpServer.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// devMode reports whether no Descope project is configured at all. A
// variable that is set but empty counts as set, so that a deployment whose
// secret failed to load stops with an error instead of trusting the fake.
func devMode() bool {
	for _, name := range []string{"DESCOPE_CONFIG_URL", "DESCOPE_PROJECT_ID", "DESCOPE_BASE_URL"} {
		if _, ok := os.LookupEnv(name); ok {
			return false
		}
	}
	return true
}

// allowedOrigins reads MCP_ALLOWED_ORIGINS, the browser origins allowed
// besides MCP_SERVER_URL's own. In dev mode, loopback origins on any port
// are allowed too, for browser tools such as MCP Inspector. nil keeps the
// library's default (the resource URL's origin only).
func allowedOrigins(dev bool, resourceURL string) []string {
	list := splitEnv("MCP_ALLOWED_ORIGINS")
	if dev {
		list = append(list, "http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")
	}
	if len(list) == 0 {
		return nil
	}
	if u, err := url.Parse(resourceURL); err == nil {
		list = append(list, u.Scheme+"://"+u.Host)
	}
	return list
}

func splitEnv(name string) []string {
	var out []string
	for _, v := range strings.Split(os.Getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// nonceSecret derives the DPoP nonce key from the session secret, so that
// one configured secret serves both without either MAC keyed like the other.
func nonceSecret(sessionSecret []byte) []byte {
	m := hmac.New(sha256.New, sessionSecret)
	m.Write([]byte("notes example: DPoP nonce key"))
	return m.Sum(nil)
}

// sessionSecret reads MCP_SESSION_SECRET. Unset or empty means nil, for
// which auth.SessionBinding picks a random key for this process.
func sessionSecret() ([]byte, error) {
	v := strings.TrimSpace(os.Getenv("MCP_SESSION_SECRET"))
	if v == "" {
		return nil, nil
	}
	if len(v) < minSessionSecretBytes {
		return nil, fmt.Errorf("MCP_SESSION_SECRET is %d bytes long; use at least %d random bytes (for example: openssl rand -base64 32)",
			len(v), minSessionSecretBytes)
	}
	return []byte(v), nil
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}
