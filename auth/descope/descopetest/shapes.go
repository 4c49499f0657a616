package descopetest

// shapes.go is the shapes real Descope takes beyond the plain one, each a
// named option: issuer drift, tenant-scoped issuers, a custom domain,
// Client ID Metadata Documents and RFC 9207's iss in authorization
// responses.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// shapes are the options of this file.
type shapes struct {
	drift         bool
	tenant        string
	customDomain  bool
	issInResponse bool
	cimd          cimdMode
	cimdClient    *http.Client
}

type cimdMode int

const (
	cimdOff cimdMode = iota
	cimdFetch
	cimdUnfetched
)

func (sh *shapes) check() {
	if sh.tenant != "" {
		mustBeID("tenant ID", sh.tenant)
	}
	if sh.cimd == cimdFetch && sh.cimdClient == nil {
		panic("descopetest: WithClientIDMetadataDocuments needs a non-nil *http.Client")
	}
}

// WithIssuerDrift makes the server behave as newer Descope MCP Servers do:
// the discovery document under the agentic path ([Server.WellKnownURL])
// declares the project-level issuer {base}/v1/apps/{projectID}, and tokens
// carry that issuer. A client that checks a metadata document's issuer
// against the issuer it built the document's URL from (RFC 8414 §3.3)
// fails when sent to the agentic issuer.
func WithIssuerDrift() Option {
	return func(c *config) { c.shapes.drift = true }
}

// WithTenantIssuer makes every token (from the token endpoint and from
// [Server.Mint]) carry the tenant-scoped issuer
// {base}/v1/apps/{projectID}/{tenantID}, as the tokens Descope mints for
// cross-app access and enterprise-managed authorization do, with dct set
// to the tenant unless the user has a current tenant. Discovery is
// unchanged: Descope serves no document for a tenant issuer. The tenant ID
// must consist of ASCII letters, digits, '-' and '_'.
func WithTenantIssuer(tenantID string) Option {
	return func(c *config) { c.shapes.tenant = tenantID }
}

// WithCustomDomain gives the server a second name, [Server.CustomDomainURL]
// (http://localhost:{port}, the same listener), standing for a customer's
// custom domain: the issuers, the discovery documents' issuer and every
// URL in them, and the tokens' iss are on it, wherever the documents are
// fetched from. [Server.URL] and [Server.WellKnownURL] stay on 127.0.0.1,
// the stand-in for Descope's own API host.
func WithCustomDomain() Option {
	return func(c *config) { c.shapes.customDomain = true }
}

// WithAuthorizationResponseIssuer makes the authorization endpoint return
// iss, the issuer of the metadata document it belongs to, in every
// redirect (RFC 9207), and the metadata advertise
// authorization_response_iss_parameter_supported.
func WithAuthorizationResponseIssuer() Option {
	return func(c *config) { c.shapes.issInResponse = true }
}

// WithClientIDMetadataDocuments makes the metadata advertise
// client_id_metadata_document_supported and the authorization and token
// endpoints accept an https URL as client_id: at each authorization
// request the server fetches the document there through hc (say, an
// httptest TLS server's Client()), which must name that URL as its
// client_id, list the redirect URI, and use token_endpoint_auth_method
// "none". Dynamic client registration stays available, as at Descope.
func WithClientIDMetadataDocuments(hc *http.Client) Option {
	return func(c *config) { c.shapes.cimd, c.shapes.cimdClient = cimdFetch, hc }
}

// WithUnfetchedClientIDMetadataDocuments is WithClientIDMetadataDocuments
// without fetching anything: an https client_id is accepted as a public
// client whose redirect URI is the one its authorization request names.
// For tests whose client's document cannot be served; it checks less than
// Descope does.
func WithUnfetchedClientIDMetadataDocuments() Option {
	return func(c *config) { c.shapes.cimd, c.shapes.cimdClient = cimdUnfetched, nil }
}

// CustomDomainURL returns the custom domain's base URL of [WithCustomDomain],
// such as http://localhost:41234, or "" without that option.
func (s *Server) CustomDomainURL() string { return s.custom }

// issuerBase is the base URL of issuers and of the URLs in discovery
// documents.
func (s *Server) issuerBase() string {
	if s.custom != "" {
		return s.custom
	}
	return s.base
}

// requestBase is the base URL a request was sent to: the custom domain's
// or the server's own.
func (s *Server) requestBase(r *http.Request) string {
	if s.custom != "" && "http://"+r.Host == s.custom {
		return s.custom
	}
	return s.base
}

// knownIssuer reports whether iss is an issuer this server mints tokens
// under.
func (s *Server) knownIssuer(iss string) bool {
	return iss == s.AgenticIssuer() || iss == s.ProjectIssuer() || (s.shapes.tenant != "" && iss == s.TenantIssuer())
}

// authorizationIssuer is the iss of an authorization response from the
// endpoint at path: the issuer its metadata document declares.
func (s *Server) authorizationIssuer(path string) string {
	return s.metadataFor(path == s.oauthPath(true, "authorize")).Issuer
}

// maxClientDocumentBytes caps a fetched client metadata document.
const maxClientDocumentBytes = 64 << 10

// clientDocumentClient resolves an https client_id to a client: the
// document fetched (or, unfetched, a public client for redirectURI). The
// client is remembered for the token endpoint.
func (s *Server) clientDocumentClient(ctx context.Context, id, redirectURI string) (*client, *oauthError) {
	if e := checkClientIDURL(id); e != nil {
		return nil, e
	}
	var md clientMetadata
	switch s.shapes.cimd {
	case cimdUnfetched:
		if redirectURI == "" {
			return nil, errorf("invalid_request", "redirect_uri is required with a client ID metadata document")
		}
		md = clientMetadata{RedirectURIs: []string{redirectURI}, TokenEndpointAuthMethod: authNone}
	case cimdFetch:
		var e *oauthError
		if md, e = s.fetchClientDocument(ctx, id); e != nil {
			return nil, e
		}
	}
	if e := validateClientMetadata(&md); e != nil {
		return nil, errorf("invalid_client", "client metadata document: %s", e.Description)
	}
	if md.TokenEndpointAuthMethod != authNone {
		return nil, errorf("invalid_client", "client metadata document: token_endpoint_auth_method must be none")
	}
	c := &client{id: id, metadata: md}
	s.mu.Lock()
	s.clients[id] = c
	s.mu.Unlock()
	return c, nil
}

// fetchClientDocument GETs a client ID metadata document and checks that
// it names itself.
func (s *Server) fetchClientDocument(ctx context.Context, id string) (clientMetadata, *oauthError) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fail := func(format string, args ...any) (clientMetadata, *oauthError) {
		return clientMetadata{}, errorf("invalid_client", "client metadata document: "+format, args...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return fail("cannot request it")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.shapes.cimdClient.Do(req)
	if err != nil {
		return fail("cannot fetch it: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("fetching it answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxClientDocumentBytes+1))
	if err != nil || len(body) > maxClientDocumentBytes {
		return fail("unreadable or over %d bytes", maxClientDocumentBytes)
	}
	var doc struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		clientMetadata
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fail("not a JSON object")
	}
	switch {
	case doc.ClientID != id:
		return fail("its client_id %q is not its URL", doc.ClientID)
	case doc.ClientSecret != "":
		return fail("it must not carry a client_secret")
	}
	return doc.clientMetadata, nil
}

// checkClientIDURL checks that a client ID metadata document's URL is an
// https URL with a path and nothing the draft forbids.
func checkClientIDURL(id string) *oauthError {
	u, err := url.Parse(id)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return errorf("invalid_client", "client_id %q is not an https URL", id)
	case u.User != nil || u.Fragment != "" || strings.Contains(id, "#"):
		return errorf("invalid_client", "client_id %q must not carry user info or a fragment", id)
	case u.Path == "" || u.Path == "/":
		return errorf("invalid_client", "client_id %q has no path", id)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errorf("invalid_client", "client_id %q has a dot segment", id)
		}
	}
	return nil
}

// isClientIDURL reports whether id is meant as a client ID metadata
// document's URL.
func isClientIDURL(id string) bool { return strings.HasPrefix(id, "https://") }
