package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// devTokenLifetime is how long dev-mode tokens last, so that a token copied
// from the banner keeps working for a day of tinkering.
const devTokenLifetime = 24 * time.Hour

// devUser is who the fake Descope signs in, both in the printed tokens and
// through the OAuth flow (MCP Inspector), so both describe the same person.
// They hold reports.read in their current tenant, so tenant_report works,
// but not the project-wide admin role, so notes_stats is hidden from them.
var devUser = descopetest.User{
	Subject:       "U2notesdevuser00000000000000",
	Email:         "dev@example.com",
	Name:          "Dev User",
	Roles:         []string{"editor"},
	Tenants:       map[string]descopetest.Tenant{devTenant: {Roles: []string{"member"}, Permissions: []string{permReportsRead}}},
	CurrentTenant: devTenant,
}

const devTenant = "T2devtenant00000000000000000"

// checkDevAddresses allows dev mode only when both the listen address and
// the public URL are on this machine: the fake Descope hands out tokens to
// anyone who asks.
func checkDevAddresses(serverURL, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("ADDR %q: %w", addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("dev mode (no Descope project is configured) listens only on this machine, "+
			"but ADDR is %q; use 127.0.0.1:PORT, or set DESCOPE_CONFIG_URL", addr)
	}
	if u, err := url.Parse(serverURL); err != nil || !isLoopback(u.Hostname()) {
		return fmt.Errorf("dev mode (no Descope project is configured) serves only this machine, "+
			"but MCP_SERVER_URL is %q; use http://localhost:PORT, or set DESCOPE_CONFIG_URL", serverURL)
	}
	return nil
}

// startDevIssuer starts the fake Descope that dev mode trusts instead of a
// real one, on a loopback port.
func startDevIssuer() *descopetest.Server {
	return descopetest.NewServer(
		descopetest.WithUser(devUser),
		descopetest.WithScopesSupported(scopeRead, scopeWrite, descope.ScopeOutboundTokenFetch),
		descopetest.WithTokenLifetime(devTokenLifetime),
	)
}

// printDevBanner tells the developer that dev mode is on and how to call
// the server: two tokens for the dev user and a curl command that works as
// is. githubAPI is the stand-in GitHub's URL, "" when github_profile is off.
func printDevBanner(w io.Writer, ds *descopetest.Server, p *descope.Provider, githubAPI string) {
	endpoint := p.ProtectedResource().URL
	full := mintDevToken(ds, endpoint, scopeRead+" "+scopeWrite+" "+descope.ScopeOutboundTokenFetch)
	readOnly := mintDevToken(ds, endpoint, scopeRead)
	fmt.Fprintln(w, "notes: DEV MODE — no Descope project is configured (DESCOPE_CONFIG_URL, DESCOPE_PROJECT_ID), so a built-in fake Descope issues tokens. Do not use in production.")
	fmt.Fprintln(w, "notes: MCP endpoint   "+endpoint)
	fmt.Fprintln(w, "notes: fake Descope   "+ds.Issuer())
	github := ""
	if githubAPI != "" {
		fmt.Fprintln(w, "notes: fake GitHub    "+githubAPI)
		github = ", github_profile (needs " + descope.ScopeOutboundTokenFetch +
			"; the first call gives a link that connects the dev user's fake GitHub account)"
	}
	fmt.Fprintln(w, "notes: token (notes:read notes:write "+descope.ScopeOutboundTokenFetch+"):  "+full)
	fmt.Fprintln(w, "notes: token (notes:read only):         "+readOnly)
	fmt.Fprintln(w, "notes: tools: whoami, list_notes, write_note (needs "+scopeWrite+"), tenant_report (needs "+
		permReportsRead+" in the tenant)"+github+"; notes_stats (needs the "+roleAdmin+" role) is hidden from the dev user.")
	if p.ProtectedResource().DPoP.Mode == auth.DPoPRequired {
		fmt.Fprintln(w, "notes: DPoP is required (DESCOPE_DPOP=required): the tokens above are bearer tokens and are refused.")
		fmt.Fprintln(w, "notes: a client must get a DPoP-bound token through the OAuth flow and send a proof with every request.")
	} else {
		fmt.Fprintln(w, "notes: try:")
		fmt.Fprintln(w, "  "+curlCommand(endpoint, full, "whoami", "{}"))
	}
	if p.ProtectedResource().DPoP.Mode == auth.DPoPRequired {
		return
	}
	fmt.Fprintln(w, "notes: MCP Inspector: npx @modelcontextprotocol/inspector, transport \"Streamable HTTP\", URL "+
		endpoint+" (OAuth through the fake Descope), or paste a token above as a Bearer header.")
}

// mintDevToken signs a token for the dev user, bound to this server's
// endpoint as a token from the OAuth flow would be.
func mintDevToken(ds *descopetest.Server, endpoint, scope string) string {
	return ds.Mint(map[string]any{"aud": []string{endpoint}, "scope": scope})
}

// curlCommand is a tools/call request in the sessionless 2026-07-28 form:
// the protocol version goes both in a header and in the body's _meta, the
// _meta also declares the client's capabilities (none), and Mcp-Method and
// Mcp-Name repeat the method and tool name as headers.
func curlCommand(endpoint, token, tool, argsJSON string) string {
	v := mcp.ProtocolVersion20260728
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool +
		`","arguments":` + argsJSON + `,"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + v + `","` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`
	return strings.Join([]string{
		"curl -s " + endpoint,
		"-H 'Authorization: Bearer " + token + "'",
		"-H 'Content-Type: application/json'",
		"-H 'Accept: application/json, text/event-stream'",
		"-H '" + mcp.HeaderProtocolVersion + ": " + v + "'",
		"-H '" + mcp.HeaderMethod + ": tools/call'",
		"-H '" + mcp.HeaderName + ": " + tool + "'",
		"-d '" + body + "'",
	}, " ")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
