// Package e2e holds the end-to-end tests of the library: real MCP clients
// (mcp-go's OAuth client, the official Go SDK's and the TypeScript SDK's)
// sign in through the whole OAuth flow (protected-resource metadata,
// authorization-server metadata, dynamic client registration, PKCE
// authorization, token exchange) against a fake Descope, then call a tool on
// an mcp-go server protected by the library. One test runs the example
// server as its own process with DPoP required, and signs in with mcp-go's
// client speaking DPoP through descopetest's key (nonces at the token
// endpoint and at the MCP server included). Another runs three replicas of
// the example behind nginx, sharing one fake Descope and one session secret,
// and has the Go SDK's and the TypeScript SDK's clients sign in and call
// tools across them while one replica is killed; it needs nginx, and is
// skipped without it, unless CI=true, where it fails.
//
// On Linux, the clients people use against the example run too, pinned in
// clients/ with a Node 22 binary of their own: mcp-remote (the stdio
// bridge), the MCP Inspector's web UI in headless Chromium, and the Vercel
// AI SDK's MCP client, each through sign-in, whoami and, where the client
// can, step-up; and a web page of its own calls the endpoint with fetch,
// to check CORS. They need chromium, and are skipped without it, unless
// CI=true. The shapes real Descope takes (issuer drift, tenant issuers, a
// custom domain, client ID metadata documents, RFC 9207) are a matrix of
// their own (TestShapes).
//
// It is a module of its own so that its test-only dependencies (the Go SDK,
// and the npm packages under node/ and clients/) never reach the library's
// users.
//
//	cd e2e && go vet ./... && go test -race -count=1 ./...
//
// The TypeScript client needs node and npm; the tests install its packages
// with npm ci. Without them the TypeScript tests are skipped, unless CI=true,
// where they fail.
package e2e
