// Package descopetest provides a fake Descope identity provider for tests.
//
// A [Server] runs on a loopback address over plain HTTP (it is built on
// net/http/httptest) and imitates the parts of Descope that an OAuth 2.1
// protected resource, such as an MCP server, and an MCP client talk to:
//
//   - OpenID Connect and RFC 8414 authorization server metadata, for both the
//     agentic (MCP Server) issuer {base}/v1/apps/agentic/{projectID}/{mcpServerID}
//     and the project-level issuer {base}/v1/apps/{projectID}, at the
//     issuer-suffixed and the path-inserted well-known locations;
//   - a JSON Web Key Set at {base}/{projectID}/.well-known/jwks.json (and
//     {base}/v2/keys/{projectID}) whose RSA keys can be added, rotated and
//     removed while the server runs;
//   - dynamic client registration, an authorization endpoint that signs the
//     configured [User] in at once, and a token endpoint for the
//     authorization code grant (PKCE with S256 is required) and for rotating
//     refresh tokens, so that real MCP clients can complete a sign-in;
//   - RS256 access tokens shaped like Descope's: iss, sub, aud, azp, scope,
//     exp, iat, jti, drn "DS", and the user's roles, permissions, tenants,
//     current tenant (dct) and amr claims. The aud is the RFC 8707 resource
//     the client asked for, else the MCP Server URL set with
//     [WithMCPServerURL] or [Server.SetMCPServerURL] (the console's "MCP
//     Server URL"), else the project ID.
//
// Unit tests that only need a token can skip the OAuth flow and call
// [Server.Mint], which signs a token with the current key and lets each
// claim be overridden or removed.
//
// DPoP (RFC 9449) works as at Descope, and is always on: a token request
// with a DPoP proof is first refused with use_dpop_nonce and a DPoP-Nonce
// header, and once the proof carries the nonce the access token is bound
// to the proof's key (cnf.jkt, token_type "DPoP"); a request without a
// proof gets a bearer token as before. An authorization request may name
// the key with dpop_jkt, a public client's refresh token needs a proof by
// the same key, and userinfo takes a bound token only with a proof by its
// key. [Server.ExpireDPoPNonces] makes the nonces handed out go stale, as
// time would. On the client side, [NewDPoPKey] makes a key whose
// [DPoPKey.Transport] turns any HTTP client into a DPoP client, nonce
// retries included, so that OAuth and MCP clients that know nothing of
// DPoP speak it:
//
//	key := descopetest.NewDPoPKey()
//	hc := &http.Client{Transport: key.Transport(nil)}
//	// hc for the OAuth client's token requests and for the MCP requests;
//	// the server under test sees tokens whose cnf.jkt is key.Thumbprint().
//
// [DPoPKey.Proof] makes single proofs, and [Server.MintBound] mints bound
// tokens for tests that skip the OAuth flow.
//
// Options reproduce the shapes real Descope takes, each on its own:
// [WithIssuerDrift] (discovery under the agentic path declaring, and tokens
// carrying, the project-level issuer), [WithTenantIssuer] (tokens under a
// tenant-scoped issuer), [WithCustomDomain] (issuers and discovery URLs on
// a second host name), [WithClientIDMetadataDocuments] and
// [WithUnfetchedClientIDMetadataDocuments] (https client IDs, advertised
// with client_id_metadata_document_supported), and
// [WithAuthorizationResponseIssuer] (RFC 9207 iss in authorization
// responses, advertised with authorization_response_iss_parameter_supported).
//
// Descope's Connections (outbound apps) vault is there too, at the same
// origin: [Server.ConnectOutboundApp] connects a user (or "tenant:" + a
// tenant ID) to an app, the four token endpoints answer a "Bearer
// <project>:<access token>" carrying outbound.token.fetch with the user's
// own connections only (E111504 when not connected; unknown fields
// refused), and the connect endpoint hands out a link that connects the
// user when followed. [Server.OutboundToken] tells a fake third-party API
// whose token it was handed; [Server.SetOutboundExpiryFormat] writes the
// expiry in the forms Descope's sources disagree on. [Server.SetOutboundFault],
// [Server.SetOutboundDelay] and [Server.OutboundTokenRequests] are for
// resilience tests.
//
// Resilience tests can make the key set and the metadata endpoints fail with
// [Server.SetJWKSFault] and [Server.SetMetadataFault], slow the key set down
// with [Server.SetJWKSDelay], and count the requests the endpoints received.
//
// Everything a Server does is safe for concurrent use, and every setting can
// be changed while requests are being served. Keys are generated when the
// server starts (RSA 2048), so nothing secret is stored in source code.
//
// The package does not talk to Descope and must never guard anything real:
// it approves every authorization request without asking anyone. Use it in
// tests, or for a demo on your own machine, as the example server's dev
// mode does (which refuses to listen beyond loopback).
package descopetest
