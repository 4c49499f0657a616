package descope

// config.go is the Config users fill in, ConfigFromEnv, and normalize,
// which checks a Config and derives what the provider needs from it.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-go-contrib/descope/auth"
)

// Defaults for the Config fields left zero.
const (
	DefaultBaseURL            = "https://api.descope.com"
	DefaultMCPPath            = "/mcp"
	DefaultLeeway             = 5 * time.Second
	DefaultMaxTokenBytes      = 16 << 10
	DefaultFetchTimeout       = 5 * time.Second
	DefaultKeyRefreshInterval = 15 * time.Minute
	DefaultMinKeyRefreshGap   = 10 * time.Second
	DefaultMetadataTTL        = 15 * time.Minute
)

// maxFetchBytes caps every document fetched from Descope.
const maxFetchBytes = 512 << 10

// Config says which Descope project (or MCP Server) issues the tokens and
// where this MCP server is reachable. The zero value of every optional
// field is the secure default.
type Config struct {
	// WellKnownURL is the discovery URL of a Descope MCP Server
	// ({base}/v1/apps/agentic/{project}/{server}/.well-known/openid-configuration)
	// or of a project ({base}/v1/apps/{project}/.well-known/openid-configuration).
	// The issuer URL without the suffix works too. Env: DESCOPE_CONFIG_URL.
	WellKnownURL string

	// ProjectID is the Descope project ID, used when WellKnownURL is empty.
	// Env: DESCOPE_PROJECT_ID.
	ProjectID string

	// BaseURL is the Descope API base URL for ProjectID. Empty means the
	// region's default host, derived from the project ID as Descope's SDKs
	// do. Env: DESCOPE_BASE_URL.
	BaseURL string

	// IssuerOrigins names more Descope API origins, such as a custom domain
	// ("https://auth.example.com"), whose issuers are accepted beside those
	// on the origin of WellKnownURL (or BaseURL). Descope asks customers
	// with a custom domain to use it in every URL, and does not document
	// which host "iss" then carries; list the other one here. Each must be
	// an https origin without a path (plain http only for loopback hosts).
	// Keys and discovery are always fetched from the configured origin,
	// never from these. Env: DESCOPE_ISSUER_ORIGINS.
	IssuerOrigins []string

	// AllowedTenants limits the tenant-scoped issuers accepted
	// ({base}/v1/apps/{project}/{tenant}, which Descope mints for cross-app
	// access and enterprise-managed authorization) to these tenant IDs.
	// Empty accepts any well-formed tenant ID of the configured project.
	// The tenant of such a token is Claims.IssuerTenant.
	// Env: DESCOPE_ALLOWED_TENANTS.
	AllowedTenants []string

	// ServerURL is the public base URL of this MCP server, such as
	// "https://mcp.example.com". The resource URL clients ask tokens for is
	// ServerURL + MCPPath. Required. Env: MCP_SERVER_URL.
	ServerURL string

	// MCPPath is the path of the MCP endpoint under ServerURL (default "/mcp").
	MCPPath string

	// RequiredScopes must all be granted for any request to the endpoint.
	// Env: DESCOPE_REQUIRED_SCOPES.
	RequiredScopes []string

	// ScopesSupported is advertised in the protected-resource metadata
	// (RequiredScopes are always included; offline_access never is).
	// Env: DESCOPE_SCOPES_SUPPORTED.
	ScopesSupported []string

	// Audience lists the accepted "aud" values; a token must carry at least
	// one. Empty means the resource URL (ServerURL + MCPPath) only: the MCP
	// specification (RFC 8707) binds a token to the server it was issued
	// for, and Descope puts the MCP Server URL of the console's MCP Server
	// settings in aud, so that URL must equal the resource URL. Listing
	// the project ID here accepts it as AcceptProjectAudience does, with
	// the same risk and the same warning. Env: DESCOPE_AUDIENCE.
	Audience []string

	// AcceptProjectAudience also accepts tokens whose "aud" is the Descope
	// project ID. Off by default, and risky: a token with the project ID
	// as audience may have been issued to any app of the project (another
	// MCP server, a web app, a script), so any of them, or anyone holding
	// one of their tokens, could call this server with it. Turn it on only
	// while your tokens do not yet carry the MCP Server URL, and only if
	// every app of the project may call this server. New logs a warning
	// when it is on. Env: DESCOPE_ACCEPT_PROJECT_AUDIENCE=true.
	AcceptProjectAudience bool

	// DPoP says whether tokens bound to a client's key (RFC 9449, Descope's
	// DPoP for inbound apps and agentic clients) are accepted, required or
	// refused, and how their proofs are checked. The zero value accepts
	// both bearer and bound tokens; a bound token sent as Bearer is always
	// refused. The protected-resource metadata advertises the proof
	// algorithms, and dpop_bound_access_tokens_required in required mode.
	// Env: DESCOPE_DPOP (allowed, required or disabled) and
	// DESCOPE_DPOP_NONCES=true.
	DPoP auth.DPoP

	// Algorithms lists the accepted signing algorithms (default RS256).
	// Only asymmetric algorithms are allowed.
	Algorithms []string

	// Leeway is the clock skew allowed on exp, nbf and iat (default 5s;
	// negative means none).
	Leeway time.Duration

	// MaxTokenBytes refuses longer tokens before decoding them (default 16 KiB).
	MaxTokenBytes int

	// ResourceName and ResourceDocumentation are optional fields of the
	// protected-resource metadata.
	ResourceName          string
	ResourceDocumentation string

	// HTTPClient fetches keys and metadata from Descope, and carries the
	// callers' access tokens to Descope for Connections. Nil means a
	// client that follows no redirects (Connections never follows one,
	// whatever this client's CheckRedirect). Every request also gets
	// FetchTimeout.
	HTTPClient *http.Client

	// FetchTimeout bounds each request to Descope (default 5s); no request
	// to the MCP endpoint waits longer than this for keys.
	FetchTimeout time.Duration

	// KeyRefreshInterval is how often signing keys are refreshed in the
	// background (default 15 minutes), counted from the end of the
	// previous background fetch.
	//
	// It bounds how long a key removed from the project's key set is still
	// trusted: while Descope answers, at most KeyRefreshInterval plus twice
	// FetchTimeout after the removal (the fetch that just missed it, the
	// wait, the fetch that sees it), or sooner if a token with an unknown
	// key ID makes the provider fetch the set meanwhile. The verified-token
	// cache does not lengthen this: the refresh that installs a key set
	// without the key also drops every cached token the key signed. While
	// fetches fail, the keys loaded before stay in use (retried every 30
	// seconds or KeyRefreshInterval, whichever is shorter), so a removed
	// key is trusted until Descope answers again. To stop trusting a key
	// at once, call Provider.ReloadKeys after removing it; a shorter
	// interval shortens the bound for every removal at the cost of one
	// fetch per interval.
	KeyRefreshInterval time.Duration

	// MinKeyRefreshGap is the least time between two key fetches caused by
	// tokens with an unknown key ID (default 10s). It bounds both the delay
	// before a rotated key is accepted and the load a flood of forged key
	// IDs can put on Descope.
	MinKeyRefreshGap time.Duration

	// MetadataTTL is how long forwarded authorization-server metadata is
	// cached (default 15 minutes).
	MetadataTTL time.Duration

	// DisableTokenCache turns off the verified-token cache. With the cache
	// on (the default), a token that passed every check is remembered, by
	// its SHA-256 hash, until it expires or TokenCacheMaxAge passes, so the
	// many requests of one session pay for one signature check.
	DisableTokenCache bool

	// TokenCacheSize bounds the number of cached tokens (default 10,000).
	TokenCacheSize int

	// TokenCacheMaxAge bounds how long a verified token is trusted without
	// checking it again (default 5 minutes). Entries also go as soon as a
	// key set without the key that signed them is installed (a background
	// refresh, one caused by an unknown key ID, or Provider.ReloadKeys), so
	// the cache never keeps a removed key's tokens alive.
	TokenCacheMaxAge time.Duration

	// Logger receives the provider's logs (default slog.Default()). Tokens
	// are never logged.
	Logger *slog.Logger
}

// ConfigFromEnv reads a Config from the environment: DESCOPE_CONFIG_URL,
// DESCOPE_PROJECT_ID, DESCOPE_BASE_URL, DESCOPE_ISSUER_ORIGINS,
// DESCOPE_ALLOWED_TENANTS, MCP_SERVER_URL,
// DESCOPE_REQUIRED_SCOPES, DESCOPE_SCOPES_SUPPORTED, DESCOPE_AUDIENCE,
// DESCOPE_ACCEPT_PROJECT_AUDIENCE, DESCOPE_DPOP and DESCOPE_DPOP_NONCES.
// Lists may be separated by commas or spaces. The switches
// (DESCOPE_ACCEPT_PROJECT_AUDIENCE, DESCOPE_DPOP_NONCES) are on for "true"
// or "1" (any true value of strconv.ParseBool) and off for anything else.
// New validates the result, including the spelling of DESCOPE_DPOP.
func ConfigFromEnv() Config {
	acceptProject, _ := strconv.ParseBool(strings.TrimSpace(os.Getenv("DESCOPE_ACCEPT_PROJECT_AUDIENCE")))
	nonces, _ := strconv.ParseBool(strings.TrimSpace(os.Getenv("DESCOPE_DPOP_NONCES")))
	return Config{
		WellKnownURL:    strings.TrimSpace(os.Getenv("DESCOPE_CONFIG_URL")),
		ProjectID:       strings.TrimSpace(os.Getenv("DESCOPE_PROJECT_ID")),
		BaseURL:         strings.TrimSpace(os.Getenv("DESCOPE_BASE_URL")),
		IssuerOrigins:   splitList(os.Getenv("DESCOPE_ISSUER_ORIGINS")),
		AllowedTenants:  splitList(os.Getenv("DESCOPE_ALLOWED_TENANTS")),
		ServerURL:       strings.TrimSpace(os.Getenv("MCP_SERVER_URL")),
		RequiredScopes:  splitList(os.Getenv("DESCOPE_REQUIRED_SCOPES")),
		ScopesSupported: splitList(os.Getenv("DESCOPE_SCOPES_SUPPORTED")),
		Audience:        splitList(os.Getenv("DESCOPE_AUDIENCE")),

		AcceptProjectAudience: acceptProject,
		DPoP: auth.DPoP{
			Mode:   auth.DPoPMode(strings.ToLower(strings.TrimSpace(os.Getenv("DESCOPE_DPOP")))),
			Nonces: nonces,
		},
	}
}

// splitList splits on commas and white space, dropping empty items.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(f) == 0 {
		return nil
	}
	return f
}

// normalized is a Config after validation, with everything derived.
type normalized struct {
	Config
	projectID       string
	issuer          string
	issuers         issuerForms
	jwksURL         string
	metadataURL     string
	resource        auth.ProtectedResource
	scopesSupported []string
	// projectAudienceVia names the setting that makes the project ID an
	// accepted audience, or is empty.
	projectAudienceVia string
}

func configError(field, problem string) error {
	return fmt.Errorf("descope: Config.%s: %s", field, problem)
}

func normalize(cfg Config) (*normalized, error) {
	c := &normalized{Config: cfg}
	if err := c.locateProject(); err != nil {
		return nil, err
	}
	if err := c.locateIssuers(); err != nil {
		return nil, err
	}
	if err := c.locateResource(); err != nil {
		return nil, err
	}
	if err := c.checkAlgorithms(); err != nil {
		return nil, err
	}
	if err := c.DPoP.Validate(); err != nil {
		return nil, errors.New("descope: Config." + strings.TrimPrefix(err.Error(), "auth: "))
	}
	c.DPoP.Algorithms = slices.Clone(c.DPoP.Algorithms)
	c.DPoP.NonceSecret = slices.Clone(c.DPoP.NonceSecret)
	if c.DPoP.Mode == "" {
		c.DPoP.Mode = auth.DPoPAllowed
	}
	c.resource.DPoP = c.DPoP

	c.RequiredScopes = cleanList(c.RequiredScopes)
	c.scopesSupported = cleanList(append(slices.Clone(c.ScopesSupported), c.RequiredScopes...))
	c.scopesSupported = slices.DeleteFunc(c.scopesSupported, func(s string) bool { return s == "offline_access" })
	c.resource.RequiredScopes = c.RequiredScopes
	if slices.Contains(c.RequiredScopes, "offline_access") {
		return nil, configError("RequiredScopes", `"offline_access" cannot be required of every request; remove it`)
	}

	c.Audience = cleanList(c.Audience)
	if len(c.Audience) == 0 {
		c.Audience = []string{c.resource.URL}
	}
	switch {
	case slices.Contains(c.Audience, c.projectID):
		c.projectAudienceVia = "Audience"
	case c.AcceptProjectAudience:
		c.Audience = append(c.Audience, c.projectID)
		c.projectAudienceVia = "AcceptProjectAudience"
	}

	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	}
	if c.MaxTokenBytes <= 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.KeyRefreshInterval <= 0 {
		c.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if c.MinKeyRefreshGap <= 0 {
		c.MinKeyRefreshGap = DefaultMinKeyRefreshGap
	}
	if c.TokenCacheSize <= 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.TokenCacheMaxAge <= 0 {
		c.TokenCacheMaxAge = DefaultTokenCacheMaxAge
	}
	if c.MetadataTTL <= 0 {
		c.MetadataTTL = DefaultMetadataTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			// A redirect from a key endpoint is not followed: keys come
			// from the configured URL or not at all.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}

// locateProject finds the project, the issuer forms and the Descope URLs.
func (c *normalized) locateProject() error {
	const wellKnownOIDC = "/.well-known/openid-configuration"
	const wellKnownOAuth = "/.well-known/oauth-authorization-server"
	c.ProjectID = strings.TrimSpace(c.ProjectID)
	c.BaseURL = strings.TrimSpace(c.BaseURL)
	c.WellKnownURL = strings.TrimSpace(c.WellKnownURL)

	if c.WellKnownURL == "" {
		if c.ProjectID == "" {
			return errors.New("descope: set Config.WellKnownURL (DESCOPE_CONFIG_URL) to your Descope MCP Server's " +
				"well-known URL, or Config.ProjectID (DESCOPE_PROJECT_ID) to your project ID")
		}
		if !validID(c.ProjectID) {
			return configError("ProjectID", fmt.Sprintf("%q is not a Descope project ID (letters and digits, like P2aAc4T2V93bddihGEx2Ryhc8e5Z)", c.ProjectID))
		}
		base := c.BaseURL
		if base == "" {
			base = baseURLForProject(c.ProjectID)
		}
		u, err := checkDescopeURL("BaseURL", base)
		if err != nil {
			return err
		}
		if strings.Trim(u.Path, "/") != "" {
			return configError("BaseURL", "must be an origin such as https://api.descope.com, without a path")
		}
		origin := u.Scheme + "://" + u.Host
		c.projectID = c.ProjectID
		c.issuer = origin + "/v1/apps/" + c.projectID
		c.issuers = issuerForms{origins: []string{origin}, projectID: c.projectID}
		c.jwksURL = origin + "/" + c.projectID + "/.well-known/jwks.json"
		c.metadataURL = c.issuer + wellKnownOIDC
		return nil
	}

	u, err := checkDescopeURL("WellKnownURL", c.WellKnownURL)
	if err != nil {
		return err
	}
	path := strings.TrimSuffix(u.Path, "/")
	path = strings.TrimSuffix(path, wellKnownOIDC)
	path = strings.TrimSuffix(path, wellKnownOAuth)
	seg := strings.Split(strings.Trim(path, "/"), "/")
	origin := u.Scheme + "://" + u.Host
	c.issuers.origins = []string{origin}
	switch {
	case len(seg) == 5 && seg[0] == "v1" && seg[1] == "apps" && seg[2] == "agentic" && validID(seg[3]) && validID(seg[4]):
		c.projectID = seg[3]
		c.issuer = origin + "/v1/apps/agentic/" + seg[3] + "/" + seg[4]
		c.issuers.serverID = seg[4]
	case len(seg) == 3 && seg[0] == "v1" && seg[1] == "apps" && seg[2] != "agentic" && validID(seg[2]):
		c.projectID = seg[2]
		c.issuer = origin + "/v1/apps/" + seg[2]
	default:
		return configError("WellKnownURL", fmt.Sprintf("%q is not a Descope discovery URL; expected "+
			"{base}/v1/apps/agentic/{projectID}/{mcpServerID}/.well-known/openid-configuration "+
			"(copy it from the MCP Server page in the Descope console) or {base}/v1/apps/{projectID}", redact(u)))
	}
	if c.ProjectID != "" && c.ProjectID != c.projectID {
		return configError("ProjectID", fmt.Sprintf("%q disagrees with the project %q in WellKnownURL; set only one", c.ProjectID, c.projectID))
	}
	if c.BaseURL != "" && strings.TrimSuffix(c.BaseURL, "/") != origin {
		return configError("BaseURL", fmt.Sprintf("%q disagrees with WellKnownURL's origin %q; set only one", c.BaseURL, origin))
	}
	c.issuers.projectID = c.projectID
	c.jwksURL = origin + "/" + c.projectID + "/.well-known/jwks.json"
	c.metadataURL = c.issuer + wellKnownOIDC
	return nil
}

// locateIssuers adds the extra issuer origins and the tenant allow-list to
// the issuer forms locateProject found.
func (c *normalized) locateIssuers() error {
	for _, raw := range cleanList(c.IssuerOrigins) {
		u, err := checkDescopeURL("IssuerOrigins", raw)
		if err != nil {
			return err
		}
		if u.Path != "" || strings.HasSuffix(raw, "/") {
			return configError("IssuerOrigins", fmt.Sprintf("%q must be an origin such as https://auth.example.com, without a path or trailing slash", raw))
		}
		if o := u.Scheme + "://" + u.Host; !slices.Contains(c.issuers.origins, o) {
			c.issuers.origins = append(c.issuers.origins, o)
		}
	}
	if tenants := cleanList(c.AllowedTenants); len(tenants) > 0 {
		c.issuers.tenants = make(map[string]bool, len(tenants))
		for _, t := range tenants {
			if !validID(t) {
				return configError("AllowedTenants", fmt.Sprintf("%q is not a Descope tenant ID (letters, digits, '-' and '_', like T2aAc4T2V93bddihGEx2Ryhc8e5Z)", t))
			}
			c.issuers.tenants[t] = true
		}
	}
	return nil
}

// locateResource builds the canonical resource URL and its metadata URL.
func (c *normalized) locateResource() error {
	raw := strings.TrimSpace(c.ServerURL)
	if raw == "" {
		return errors.New("descope: set Config.ServerURL (MCP_SERVER_URL) to this server's public base URL, such as https://mcp.example.com")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return configError("ServerURL", fmt.Sprintf("%q is not an absolute http(s) URL such as https://mcp.example.com", raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return configError("ServerURL", "must not carry user info, a query or a fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return configError("ServerURL", "must use https (plain http is allowed only for localhost)")
	}
	mcpPath := strings.TrimSpace(c.MCPPath)
	if mcpPath == "" {
		mcpPath = DefaultMCPPath
	}
	if strings.ContainsAny(mcpPath, "?#{} ") {
		return configError("MCPPath", fmt.Sprintf("%q is not a plain path such as /mcp", mcpPath))
	}
	resourcePath := strings.TrimRight(u.Path, "/") + "/" + strings.Trim(mcpPath, "/")
	resourcePath = strings.TrimRight(resourcePath, "/")
	if strings.ContainsAny(resourcePath, "{}") {
		return configError("ServerURL", "the path must not contain { or }")
	}
	origin := u.Scheme + "://" + u.Host
	c.resource.URL = origin + resourcePath
	c.resource.MetadataURL = origin + prmPath + resourcePath
	return nil
}

func (c *normalized) checkAlgorithms() error {
	c.Algorithms = cleanList(c.Algorithms)
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{"RS256"}
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, a) {
			return configError("Algorithms", fmt.Sprintf("%q is not allowed; use asymmetric algorithms only (%s)", a, strings.Join(asymmetricAlgorithms, ", ")))
		}
	}
	return nil
}

var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// checkDescopeURL parses a Descope URL and insists on https, except for
// loopback hosts (tests and dev mode).
func checkDescopeURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, configError(field, fmt.Sprintf("%q is not an absolute https URL", raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, configError(field, "must not carry user info, a query or a fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return nil, configError(field, "must use https (plain http is allowed only for localhost)")
	}
	return u, nil
}

// redact drops anything but scheme, host and path from a URL for messages.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.Path
}

// baseURLForProject derives the API host from a project ID the way Descope's
// SDKs do: a 32-character ID carries its region in characters 1 to 4.
func baseURLForProject(projectID string) string {
	if len(projectID) >= 32 {
		return "https://api." + strings.ToLower(projectID[1:5]) + ".descope.com"
	}
	return DefaultBaseURL
}

// validID accepts the characters of Descope project and MCP Server IDs.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cleanList trims items and drops empty ones and duplicates, keeping order.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
