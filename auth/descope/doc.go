// Package descope is the Descope provider for package auth: it verifies
// Descope access tokens and serves the discovery documents MCP clients need
// to sign in through Descope.
//
//	p, err := descope.New(descope.Config{
//		WellKnownURL: os.Getenv("DESCOPE_CONFIG_URL"),
//		ServerURL:    "https://mcp.example.com",
//	})
//	if err != nil { log.Fatal(err) }
//	defer p.Close()
//	server.NewStreamableHTTPServer(mcpServer, auth.WithProvider(p)).Start(":8080")
//
// Tools read the caller, with Descope's roles, permissions and tenants,
// through ClaimsFromContext.
//
// Tokens are accepted only when signed by a key the project publishes
// (asymmetric algorithms only, RS256 by default, with a key ID), issued by
// the configured project (the MCP Server issuer or the project-level
// issuer, matched exactly), meant for this server (the resource URL, which
// must be the MCP Server URL set in the Descope console, unless
// Config.Audience says otherwise; the project ID only with
// Config.AcceptProjectAudience), unexpired, and not a refresh token.
//
// Signing keys refresh in the background every Config.KeyRefreshInterval;
// Provider.ReloadKeys fetches them at once, so that a key removed in
// Descope stops verifying tokens without waiting for that.
//
// Tools call third-party APIs as the signed-in user with Connections:
// Provider.Connections, then Connections.Token in a tool handler fetches
// the user's token for an outbound app from Descope's vault, and
// ConnectionToolResult asks a user who has not connected the app to do so.
//
// Package descopetest provides a fake Descope for tests.
package descope
