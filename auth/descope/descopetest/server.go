package descopetest

import (
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used by [NewServer] when no option overrides them.
const (
	// DefaultProjectID is the Descope project ID a Server uses unless
	// [WithProjectID] is given. Real project IDs are "P" followed by 27
	// characters.
	DefaultProjectID = "P2aAc4T2V93bddihGEx2Ryhc8e5Z"

	// DefaultMCPServerID is the MCP Server ID a Server uses unless
	// [WithMCPServerID] is given. Real MCP Server IDs are "MS" followed by
	// 27 characters.
	DefaultMCPServerID = "MS35d1Xw1Yo6zozsW7n8BU6xLmnAs"

	// DefaultUserID is the subject of the user a Server signs in unless
	// [WithUser] or [Server.SetUser] chooses another one.
	DefaultUserID = "U2defaultuser000000000000000"

	// DefaultUserEmail is the email claim of the default user.
	DefaultUserEmail = "user@example.com"

	// DefaultUserName is the name claim of the default user.
	DefaultUserName = "Test User"

	// DefaultClientID is the azp claim of tokens made by [Server.Mint].
	DefaultClientID = "descopetest-client"

	// DefaultTokenLifetime is the lifetime of access tokens unless
	// [WithTokenLifetime] is given.
	DefaultTokenLifetime = time.Hour

	// codeLifetime is how long an authorization code can be redeemed.
	codeLifetime = 10 * time.Minute

	// refreshLifetime is how long a refresh token can be redeemed.
	refreshLifetime = 30 * 24 * time.Hour
)

// defaultScopesSupported is the scopes_supported list of the metadata unless
// WithScopesSupported is given.
var defaultScopesSupported = []string{"openid", "notes:read", "notes:write"}

// User is the end user the fake identity provider signs in. Its fields become
// claims of the access tokens the server issues.
type User struct {
	// Subject is the user ID, the sub claim. Descope user IDs are "U"
	// followed by 27 characters. The claim is left out when Subject is empty.
	Subject string

	// Email becomes the email claim when non-empty.
	Email string

	// Name becomes the name claim when non-empty.
	Name string

	// Roles becomes the roles claim (project-level roles) when non-empty.
	Roles []string

	// Permissions becomes the permissions claim (project-level permissions)
	// when non-empty.
	Permissions []string

	// Tenants becomes the tenants claim when non-empty: for each tenant ID
	// an object with the user's "roles" and "permissions" in that tenant.
	Tenants map[string]Tenant

	// CurrentTenant becomes the dct claim when non-empty.
	CurrentTenant string

	// AMR lists the authentication methods of the sign-in, the amr claim.
	// When empty, the claim is ["pwd"].
	AMR []string
}

// Tenant holds a user's roles and permissions in one Descope tenant.
type Tenant struct {
	// Roles are the user's roles in the tenant.
	Roles []string
	// Permissions are the user's permissions in the tenant.
	Permissions []string
}

// clone returns a deep copy of u, so that the caller of SetUser or User
// cannot change the server's copy afterwards.
func (u User) clone() User {
	c := u
	c.Roles = slices.Clone(u.Roles)
	c.Permissions = slices.Clone(u.Permissions)
	c.AMR = slices.Clone(u.AMR)
	if u.Tenants != nil {
		c.Tenants = make(map[string]Tenant, len(u.Tenants))
		for id, t := range u.Tenants {
			c.Tenants[id] = Tenant{Roles: slices.Clone(t.Roles), Permissions: slices.Clone(t.Permissions)}
		}
	}
	return c
}

// DefaultUser returns the user a Server signs in unless told otherwise.
func DefaultUser() User {
	return User{Subject: DefaultUserID, Email: DefaultUserEmail, Name: DefaultUserName}
}

// config collects the settings of NewServer's options.
type config struct {
	projectID       string
	mcpServerID     string
	mcpServerURL    string
	projectLevel    bool
	scopesSupported []string
	user            User
	lifetime        time.Duration
	now             func() time.Time
	shapes          shapes
}

// Option configures a Server made by [NewServer].
type Option func(*config)

// WithProjectID sets the Descope project ID (default [DefaultProjectID]).
// It must be non-empty and consist of ASCII letters, digits, '-' and '_'.
func WithProjectID(id string) Option {
	return func(c *config) { c.projectID = id }
}

// WithMCPServerID sets the MCP Server ID (default [DefaultMCPServerID]).
// It must be non-empty and consist of ASCII letters, digits, '-' and '_'.
func WithMCPServerID(id string) Option {
	return func(c *config) { c.mcpServerID = id }
}

// WithProjectLevelIssuer makes the server start with the project-level
// issuer {base}/v1/apps/{projectID} instead of the agentic one; see
// [Server.SetProjectLevelIssuer].
func WithProjectLevelIssuer() Option {
	return func(c *config) { c.projectLevel = true }
}

// WithScopesSupported sets the scopes_supported list of the metadata
// documents (default "openid", "notes:read", "notes:write"). The server
// grants whatever scopes a client asks for; the list is only advertised.
func WithScopesSupported(scopes ...string) Option {
	return func(c *config) { c.scopesSupported = slices.Clone(scopes) }
}

// WithMCPServerURL sets the MCP Server URL from the start; see
// [Server.SetMCPServerURL]. Without it, tokens for which no resource was
// named carry the project ID as aud, which a descope.Provider refuses
// unless it is configured to accept the project ID.
func WithMCPServerURL(u string) Option {
	return func(c *config) { c.mcpServerURL = u }
}

// WithUser sets the user the server signs in (default [DefaultUser]).
func WithUser(u User) Option {
	return func(c *config) { c.user = u.clone() }
}

// WithTokenLifetime sets the lifetime of access tokens (default
// [DefaultTokenLifetime]). NewServer panics if d is not positive; to make
// expired tokens, use [WithClock] or override the exp claim in [Server.Mint].
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.lifetime = d }
}

// WithClock sets the time source for the iat and exp claims and for the
// expiry of authorization codes, refresh tokens and DPoP nonces (default
// time.Now). It must be safe for concurrent use. DPoP proofs are still
// checked against the real time, since clients sign them by their own
// clocks.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Server is a fake Descope identity provider listening on a loopback
// address. Create one with [NewServer] and stop it with [Server.Close].
// All methods are safe for concurrent use.
type Server struct {
	srv         *httptest.Server
	base        string
	projectID   string
	mcpServerID string
	scopes      []string
	lifetime    time.Duration
	now         func() time.Time
	routes      map[string]bool // paths served, for CORS preflight
	shapes      shapes          // the Descope shapes chosen with options (shapes.go)
	custom      string          // the custom domain's base URL; "" without WithCustomDomain

	projectLevel     atomic.Bool
	jwksFault        atomic.Int64
	metadataFault    atomic.Int64
	jwksDelay        atomic.Int64
	metadataDelay    atomic.Int64
	jwksRequests     atomic.Int64
	metadataRequests atomic.Int64

	closing   chan struct{} // closed by Close; releases waiting handlers
	closeOnce sync.Once
	waiting   chan struct{} // receives a value when a handler starts to wait (for tests)

	mu            sync.Mutex
	mcpServerURL  string // the console's MCP Server URL; "" if none
	user          User
	keys          map[string]*rsa.PrivateKey // every key ever made, by kid
	published     []string                   // kids in the key set, oldest first
	signingKID    string
	clients       map[string]*client
	codes         map[string]*authCode
	refreshTokens map[string]*grant

	proofs *proofChecks // DPoP at the token and userinfo endpoints (dpop.go)

	connections     map[string]*connection     // owner + "\x00" + app: the vault (outbound.go)
	pendingConnects map[string]*pendingConnect // connect link ID -> what it connects
	outboundState
}

// NewServer starts a fake Descope identity provider and returns it. It
// generates one RSA signing key and does not wait for anything else. It
// panics if an option is invalid. Call [Server.Close] when done, for
// example with t.Cleanup(s.Close).
func NewServer(opts ...Option) *Server {
	cfg := config{
		projectID:       DefaultProjectID,
		mcpServerID:     DefaultMCPServerID,
		scopesSupported: slices.Clone(defaultScopesSupported),
		user:            DefaultUser(),
		lifetime:        DefaultTokenLifetime,
		now:             time.Now,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	mustBeID("project ID", cfg.projectID)
	mustBeID("MCP Server ID", cfg.mcpServerID)
	mustBeServerURL(cfg.mcpServerURL)
	cfg.shapes.check()
	if cfg.lifetime <= 0 {
		panic(fmt.Sprintf("descopetest: token lifetime must be positive, got %v", cfg.lifetime))
	}
	if cfg.now == nil {
		panic("descopetest: WithClock needs a non-nil function")
	}

	s := &Server{
		projectID:     cfg.projectID,
		mcpServerID:   cfg.mcpServerID,
		scopes:        cfg.scopesSupported,
		lifetime:      cfg.lifetime,
		now:           cfg.now,
		shapes:        cfg.shapes,
		routes:        make(map[string]bool),
		closing:       make(chan struct{}),
		waiting:       make(chan struct{}, 64),
		mcpServerURL:  cfg.mcpServerURL,
		user:          cfg.user,
		keys:          make(map[string]*rsa.PrivateKey),
		clients:       make(map[string]*client),
		codes:         make(map[string]*authCode),
		refreshTokens: make(map[string]*grant),

		connections:     make(map[string]*connection),
		pendingConnects: make(map[string]*pendingConnect),
	}
	s.proofs = newProofChecks(cfg.now)
	s.projectLevel.Store(cfg.projectLevel)
	s.RotateKey()

	// The handlers read s.base, so it is set before the server starts
	// accepting connections.
	s.srv = httptest.NewUnstartedServer(nil)
	s.base = "http://" + s.srv.Listener.Addr().String()
	if cfg.shapes.customDomain {
		// Another name of the same loopback listener.
		_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
		s.custom = "http://localhost:" + port
	}
	s.srv.Config.Handler = s.withCORS(s.routesHandler())
	s.srv.Start()
	return s
}

// mustBeID panics unless id can be used as one path segment of a URL.
func mustBeID(what, id string) {
	if id == "" {
		panic("descopetest: empty " + what)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			panic(fmt.Sprintf("descopetest: invalid %s %q: only ASCII letters, digits, '-' and '_' are allowed", what, id))
		}
	}
}

// Close shuts the server down. Requests held by [FaultHang] or a delay are
// aborted first, so Close does not wait for them. Close may be called more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// URL returns the base URL of the server, such as http://127.0.0.1:41234,
// without a trailing slash.
func (s *Server) URL() string { return s.base }

// Client returns an HTTP client set up to talk to the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// ProjectID returns the Descope project ID.
func (s *Server) ProjectID() string { return s.projectID }

// MCPServerID returns the MCP Server ID.
func (s *Server) MCPServerID() string { return s.mcpServerID }

// Issuer returns the issuer that tokens carry now: [Server.AgenticIssuer]
// by default, [Server.ProjectIssuer] after SetProjectLevelIssuer(true) or
// with [WithIssuerDrift], [Server.TenantIssuer] with [WithTenantIssuer].
func (s *Server) Issuer() string {
	switch {
	case s.shapes.tenant != "":
		return s.TenantIssuer()
	case s.projectLevel.Load() || s.shapes.drift:
		return s.ProjectIssuer()
	}
	return s.AgenticIssuer()
}

// AgenticIssuer returns the MCP Server issuer,
// {base}/v1/apps/agentic/{projectID}/{mcpServerID}, where {base} is
// [Server.CustomDomainURL] with [WithCustomDomain], else [Server.URL].
func (s *Server) AgenticIssuer() string { return s.issuerBase() + s.agenticIssuerPath() }

// ProjectIssuer returns the project-level issuer, {base}/v1/apps/{projectID}.
func (s *Server) ProjectIssuer() string { return s.issuerBase() + s.projectIssuerPath() }

// TenantIssuer returns the tenant-scoped issuer of [WithTenantIssuer]'s
// tenant, {base}/v1/apps/{projectID}/{tenantID}, or "" without that option.
func (s *Server) TenantIssuer() string {
	if s.shapes.tenant == "" {
		return ""
	}
	return s.ProjectIssuer() + "/" + s.shapes.tenant
}

// WellKnownURL returns the OpenID configuration URL of the MCP Server (of
// the project after SetProjectLevelIssuer(true)) on the server's own
// address, as the Descope console shows it:
// {URL}/v1/apps/agentic/{projectID}/{mcpServerID}/.well-known/openid-configuration.
// With [WithIssuerDrift] the document there declares the project-level
// issuer; with [WithCustomDomain] it declares an issuer on the custom domain.
func (s *Server) WellKnownURL() string {
	path := s.agenticIssuerPath()
	if s.projectLevel.Load() {
		path = s.projectIssuerPath()
	}
	return s.base + path + "/.well-known/openid-configuration"
}

// JWKSURL returns the URL of the key set, {base}/{projectID}/.well-known/jwks.json.
func (s *Server) JWKSURL() string { return s.base + s.jwksPath() }

// RegistrationURL returns the dynamic client registration endpoint.
func (s *Server) RegistrationURL() string { return s.base + s.registrationPath() }

// SetProjectLevelIssuer switches the issuer that newly issued tokens carry,
// and that [Server.Issuer] returns, between the project-level issuer (on)
// and the agentic one (off). Metadata for both issuers is served either way.
func (s *Server) SetProjectLevelIssuer(on bool) { s.projectLevel.Store(on) }

// SetMCPServerURL sets the MCP Server URL, as in the MCP Server's settings
// in the Descope console: it becomes the aud of tokens that [Server.Mint]
// makes and of OAuth tokens for which the client named no resource. Set it
// to the resource URL of the MCP server under test (for a
// descope.Provider, its ProtectedResource().URL). An empty u unsets it,
// and tokens carry the project ID as aud again. It panics unless u is empty
// or an absolute http(s) URL without a fragment.
func (s *Server) SetMCPServerURL(u string) {
	mustBeServerURL(u)
	s.mu.Lock()
	s.mcpServerURL = u
	s.mu.Unlock()
}

// MCPServerURL returns the MCP Server URL set with [WithMCPServerURL] or
// [Server.SetMCPServerURL], or "" if none is.
func (s *Server) MCPServerURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mcpServerURL
}

// defaultAudience is the aud of tokens when no resource is named: the MCP
// Server URL, or the project ID when none is set.
func (s *Server) defaultAudience() []string {
	if u := s.MCPServerURL(); u != "" {
		return []string{u}
	}
	return []string{s.projectID}
}

// mustBeServerURL panics unless u is empty or an absolute http(s) URL
// without a fragment.
func mustBeServerURL(u string) {
	if u == "" {
		return
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" || strings.Contains(u, "#") {
		panic(fmt.Sprintf("descopetest: invalid MCP Server URL %q: want an absolute http(s) URL such as https://mcp.example.com/mcp", u))
	}
}

// SetUser sets the user that the authorization endpoint signs in and whose
// claims [Server.Mint] uses. Grants made earlier keep the user they were
// made for, also when their refresh tokens are used.
func (s *Server) SetUser(u User) {
	u = u.clone()
	s.mu.Lock()
	s.user = u
	s.mu.Unlock()
}

// User returns a copy of the user the server signs in.
func (s *Server) User() User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user.clone()
}

// currentUser returns the server's user without copying it; the server
// never changes a User value after storing it.
func (s *Server) currentUser() User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

func (s *Server) agenticIssuerPath() string {
	return "/v1/apps/agentic/" + s.projectID + "/" + s.mcpServerID
}

func (s *Server) projectIssuerPath() string { return "/v1/apps/" + s.projectID }

func (s *Server) jwksPath() string { return "/" + s.projectID + "/.well-known/jwks.json" }

func (s *Server) registrationPath() string {
	return "/v1/mgmt/mcp/client/" + s.projectID + "/" + s.mcpServerID + "/register"
}

// oauthPath returns the path of an OAuth endpoint ("authorize", "token",
// "revoke", "userinfo") for the agentic or the project-level issuer.
func (s *Server) oauthPath(projectLevel bool, endpoint string) string {
	if projectLevel {
		return "/oauth2/v1/apps/" + endpoint
	}
	return "/oauth2/v1/apps/agentic/" + s.projectID + "/" + s.mcpServerID + "/" + endpoint
}

// routesHandler returns the handler for every path the server serves; all
// other paths answer 404.
func (s *Server) routesHandler() http.Handler {
	mux := http.NewServeMux()
	handle := func(methods []string, path string, h http.HandlerFunc) {
		s.routes[path] = true
		for _, m := range methods {
			mux.HandleFunc(m+" "+path, h)
		}
	}
	get := []string{http.MethodGet} // also matches HEAD
	post := []string{http.MethodPost}
	both := []string{http.MethodGet, http.MethodPost}

	for _, projectLevel := range []bool{false, true} {
		issuerPath := s.agenticIssuerPath()
		if projectLevel {
			issuerPath = s.projectIssuerPath()
		}
		h := s.metadataHandler(projectLevel)
		handle(get, issuerPath+"/.well-known/openid-configuration", h)
		handle(get, issuerPath+"/.well-known/oauth-authorization-server", h)
		handle(get, "/.well-known/openid-configuration"+issuerPath, h)
		handle(get, "/.well-known/oauth-authorization-server"+issuerPath, h)

		handle(both, s.oauthPath(projectLevel, "authorize"), s.handleAuthorize)
		handle(post, s.oauthPath(projectLevel, "token"), s.handleToken)
		handle(post, s.oauthPath(projectLevel, "revoke"), s.handleRevoke)
		handle(both, s.oauthPath(projectLevel, "userinfo"), s.handleUserInfo)
	}
	handle(get, s.jwksPath(), s.handleJWKS)
	handle(get, "/v2/keys/"+s.projectID, s.handleJWKS)
	handle(post, s.registrationPath(), s.handleRegister)
	for _, path := range []string{outboundUserToken, outboundUserTokenLatest, outboundTenantToken, outboundTenantTokenLatest} {
		handle(post, path, s.handleOutboundToken)
	}
	handle(post, outboundConnect, s.handleOutboundConnect)
	mux.HandleFunc("GET "+outboundConnectLink, s.handleConnectLink)
	return mux
}

// withCORS lets browser-based clients, such as the MCP Inspector, call the
// server: every answer allows any origin and preflight requests for served
// paths are answered directly.
func (s *Server) withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" && s.routes[r.URL.Path] {
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notifyWaiting tells tests that a handler started to wait, without ever
// blocking the handler.
func (s *Server) notifyWaiting() {
	select {
	case s.waiting <- struct{}{}:
	default:
	}
}
