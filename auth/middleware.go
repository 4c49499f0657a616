package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth/dpop"
	"github.com/mcp-go-contrib/descope/auth/internal/caller"
)

// DefaultMaxHeaderBytes caps the Authorization header the middleware will
// look at. Longer headers are refused before any parsing.
const DefaultMaxHeaderBytes = 16 << 10

// retryAfterSeconds is what a 503 asks clients to wait.
const retryAfterSeconds = "5"

// Fixed texts sent to clients. They never carry detail about why a token
// failed: that goes to the logs only.
const (
	descNoToken      = "This endpoint requires an OAuth access token in the Authorization header."
	descInvalidToken = "The access token is invalid, expired, or not issued for this server."
	descInsufficient = "The access token does not grant the scope this request requires."
	descUnavailable  = "Access tokens cannot be verified right now. Retry later with the same token."
	bodyNoToken      = `{"error":"unauthorized","error_description":"` + descNoToken + `"}`
	bodyInvalidToken = `{"error":"invalid_token","error_description":"` + descInvalidToken + `"}`
	bodyInsufficient = `{"error":"insufficient_scope","error_description":"` + descInsufficient + `"}`
	bodyUnavailable  = `{"error":"temporarily_unavailable","error_description":"` + descUnavailable + `"}`
	descInvalidProof = "The DPoP proof is missing, invalid, or does not match this request and access token."
	descUseNonce     = "Send the request again with a DPoP proof that carries the nonce in the DPoP-Nonce header."
	descBoundBearer  = "The access token is bound to a key: send it with the DPoP scheme and a DPoP proof."
	descDPoPRequired = "This endpoint accepts only DPoP-bound access tokens, sent with the DPoP scheme and a DPoP proof."
	bodyInvalidProof = `{"error":"invalid_dpop_proof","error_description":"` + descInvalidProof + `"}`
	bodyUseNonce     = `{"error":"use_dpop_nonce","error_description":"` + descUseNonce + `"}`
	bodyBoundBearer  = `{"error":"invalid_token","error_description":"` + descBoundBearer + `"}`
	bodyDPoPRequired = `{"error":"invalid_token","error_description":"` + descDPoPRequired + `"}`
	bodyTooLarge     = `{"error":"invalid_request","error_description":"The request body is too large."}`
	bodyUnreadable   = `{"error":"invalid_request","error_description":"The request body could not be read."}`
	bodyListenDenied = `{"error":"access_denied","error_description":"The subscription names a resource this caller may not read."}`
	// A JSON-RPC error, so that clients of either protocol era read it.
	bodyNotification  = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Notifications are accepted only within the caller's own session."}}`
	headerAuthorize   = "Authorization"
	headerChallenge   = "Www-Authenticate" // canonical: set directly in the map
	schemeBearer      = "Bearer"
	contentTypeJSON   = "application/json"
	headerRetryAfter  = "Retry-After"
	headerContentType = "Content-Type"
	headerOrigin      = "Origin"
	headerLastEventID = "Last-Event-Id" // canonical, so lookups do not allocate
	headerSessionID   = "Mcp-Session-Id"
	bodyBatch         = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Batches are not accepted: send one JSON-RPC message per request."}}`
	bodyRepeated      = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"A message may name params only once."}}`
	bodyOrigin        = `{"error":"invalid_request","error_description":"Requests from this Origin are not allowed."}`
	bodyUnbound       = `{"error":"server_error","error_description":"The server is misconfigured and cannot open a session."}`
	// Exactly what mcp-go answers for a session it does not know.
	bodyUnknownSession = "Invalid session ID\n"
	// A JSON-RPC error; the request's id goes between the halves.
	bodyTasksBefore = `{"jsonrpc":"2.0","id":`
	bodyTasksAfter  = `,"error":{"code":-32601,"message":"Tasks are not available on this server: they are not yet tied to the caller who created them. Call the tool without task augmentation."}}`
)

// Option changes how the middleware behaves.
type Option func(*settings)

type settings struct {
	logger          *slog.Logger
	maxHeaderBytes  int
	maxBodyBytes    int64
	policy          *Policy
	sessionSecret   []byte
	sessionLifetime time.Duration
	origins         []string // nil: the resource URL's origin
	bodyReadTimeout time.Duration
}

// WithSessionLifetime bounds how long a session ID stays valid after it was
// minted (default DefaultSessionLifetime). Past it, the session's requests
// get 404 and the client opens a new session.
func WithSessionLifetime(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.sessionLifetime = d
		}
	}
}

// DefaultBodyReadTimeout bounds how long the middleware waits for a POST
// body to arrive. It applies to the body only: it never cuts a response
// stream.
const DefaultBodyReadTimeout = 30 * time.Second

// WithBodyReadTimeout changes how long the middleware waits for a POST body
// (default DefaultBodyReadTimeout); a body still incomplete then gets 400
// and the connection is closed.
func WithBodyReadTimeout(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.bodyReadTimeout = d
		}
	}
}

// WithPolicy enforces pol at the transport: a tools/call (or prompts/get,
// resources/read, resources/subscribe, completion/complete,
// subscriptions/listen) whose declared scopes the token lacks is refused
// with 403 insufficient_scope before it runs, and the
// endpoint's required scopes honour pol's scope hierarchy.
func WithPolicy(pol *Policy) Option {
	return func(s *settings) { s.policy = pol }
}

// WithMaxBodyBytes changes the largest POST body the middleware reads to
// learn the operation (default DefaultMaxBodyBytes); larger bodies get 413.
func WithMaxBodyBytes(n int64) Option {
	return func(s *settings) {
		if n > 0 {
			s.maxBodyBytes = n
		}
	}
}

// WithSessionSecret sets the secret that binds MCP sessions to callers (see
// SessionBinding) when WithProvider serves the endpoint. Replicas behind
// one load balancer must share it. Default: random per process. Middleware
// and Handler do not own the MCP server and ignore it (with a warning in
// the log): pass SessionBinding(secret) to server.NewStreamableHTTPServer
// there; they check the session IDs it mints.
func WithSessionSecret(secret []byte) Option {
	return func(s *settings) { s.sessionSecret = secret }
}

// WithLogger sends the middleware's logs to l instead of slog.Default().
// Each refusal is logged once at debug level with its reason; tokens are
// never logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) {
		if l != nil {
			s.logger = l
		}
	}
}

// WithMaxHeaderBytes changes the largest Authorization header accepted
// (default DefaultMaxHeaderBytes).
func WithMaxHeaderBytes(n int) Option {
	return func(s *settings) {
		if n > 0 {
			s.maxHeaderBytes = n
		}
	}
}

// guard is the middleware's state, computed once when it is built.
type guard struct {
	provider AuthProvider
	required []string
	log      *slog.Logger
	maxBytes int
	maxBody  int64
	policy   *Policy
	origins  origins
	lifetime time.Duration
	bodyWait time.Duration
	dpop     *dpopGuard
	// providerChecksSyntax: the provider checks a token's bytes itself,
	// as strictly, so the middleware does not (caller.ChecksTokenSyntax).
	providerChecksSyntax bool

	// Challenges that never change are rendered once.
	challengeNoToken []string
	challengeInvalid []string
	metadataParam    string
}

func collect(opts []Option) settings {
	s := settings{logger: slog.Default(), maxHeaderBytes: DefaultMaxHeaderBytes, maxBodyBytes: DefaultMaxBodyBytes,
		sessionLifetime: DefaultSessionLifetime, bodyReadTimeout: DefaultBodyReadTimeout}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return s
}

func newGuard(p AuthProvider, s settings) *guard {
	res := p.ProtectedResource()
	g := &guard{
		provider: p,
		required: append([]string(nil), res.RequiredScopes...),
		log:      s.logger,
		maxBytes: s.maxHeaderBytes,
		maxBody:  s.maxBodyBytes,
		policy:   s.policy,
		lifetime: s.sessionLifetime,
		bodyWait: s.bodyReadTimeout,
		dpop:     newDPoPGuard(res.DPoP, res.URL, s.logger),

		providerChecksSyntax: caller.ChecksSyntax(p),
	}
	if s.origins != nil {
		var bad []string
		if g.origins, bad = parseOrigins(s.origins); len(bad) > 0 {
			g.log.Warn("auth: WithAllowedOrigins entries that are not origins (scheme://host[:port], no path) allow nothing",
				slog.Any("entries", bad))
		}
	} else {
		g.origins = defaultOrigins(res.URL)
	}
	noteLifetime(s.sessionLifetime)
	g.metadataParam = `resource_metadata="` + quoteSafe(res.MetadataURL) + `"`
	g.challengeNoToken = g.challenges(usedNone, "", "", g.required)
	g.challengeInvalid = g.challenges(usedBearer, "invalid_token", descInvalidToken, g.required)
	return g
}

// Middleware returns an http middleware that lets a request through only
// when it carries a bearer token the provider accepts and that grants the
// provider's required scopes. The verified claims reach the next handler
// through the request context (see ClaimsFromContext).
//
// In order, it refuses: a present Origin that is not allowed (403, see
// WithAllowedOrigins); a missing or refused token (401, 503 while the
// provider cannot decide); a session ID that is not the caller's own, has
// ended or expired (404, on every verb; see SessionBinding); and, on POST,
// notifications outside the caller's session, tasks, and operations whose
// Policy scopes the token lacks (403). A request it lets through ends when
// its token expires, so streams do not outlive their token.
//
// A request from an allowed origin gets CORS headers: a preflight (OPTIONS
// with Access-Control-Request-Method), which never carries credentials, is
// answered here with 204 and the methods and headers MCP clients send, and
// every other answer, refusals included, lets the page read it and its
// WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version and DPoP-Nonce
// headers. Other OPTIONS requests pass to the MCP server unauthenticated.
func Middleware(p AuthProvider, opts ...Option) func(http.Handler) http.Handler {
	s := collect(opts)
	warnSessionSecret(s)
	return middleware(p, s)
}

// warnSessionSecret says so when WithSessionSecret reaches Middleware or
// Handler, which do not own the MCP server and so cannot bind its sessions.
func warnSessionSecret(s settings) {
	if s.sessionSecret != nil {
		s.logger.Warn("auth: WithSessionSecret has no effect on Middleware or Handler; " +
			"pass auth.SessionBinding(secret) to server.NewStreamableHTTPServer")
	}
}

func middleware(p AuthProvider, s settings) func(http.Handler) http.Handler {
	g := newGuard(p, s)
	return func(next http.Handler) http.Handler {
		return &guarded{g: g, next: next}
	}
}

// guarded is the middleware in front of one handler.
type guarded struct {
	g    *guard
	next http.Handler
}

// ServeHTTP runs the next handler for a request admit let through. It is
// kept apart from admit, whose frame is large, so that the MCP server's
// deep JSON decoding runs on a stack only a few words deeper than it
// would without the middleware: a goroutine whose stack must grow copies
// every frame on it.
func (h *guarded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.g.admit(w, r, h.next)
	if !ok {
		return
	}
	if a.cancel != nil {
		defer a.cancel()
	}
	if a.connEnds {
		defer endOnConnection(w, a.ends)
	}
	h.next.ServeHTTP(a.w, a.r)
}

// admitted is how admit lets a request through.
type admitted struct {
	w        http.ResponseWriter
	r        *http.Request
	ends     time.Time          // with connEnds: the connection's read deadline to lift
	connEnds bool               // the request ends at the connection's read deadline
	cancel   context.CancelFunc // or at its context's deadline
}

// admit decides a request: it answers it and reports false, or reports
// how the next handler is to run it.
//
//go:noinline
func (g *guard) admit(w http.ResponseWriter, r *http.Request, next http.Handler) (admitted, bool) {
	if origin := headerValue(r.Header, headerOrigin); origin != "" {
		if !g.origins.allows(origin) {
			g.refuse(w, r, errOrigin)
			return admitted{}, false
		}
		allowOrigin(w.Header(), origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			preflight(w)
			return admitted{}, false
		}
	}
	if r.Method == http.MethodOptions {
		next.ServeHTTP(w, r)
		return admitted{}, false
	}
	token, used, err := credential(r.Header, g.maxBytes, !g.providerChecksSyntax)
	switch {
	case err != nil:
	case used == usedDPoP && g.dpop.mode == DPoPDisabled:
		err = &TokenError{Kind: ErrNoToken, Reason: "dpop_disabled"}
	case used == usedBearer && g.dpop.mode == DPoPRequired:
		err = &TokenError{Kind: ErrInvalidToken, Reason: "bearer_refused", Err: errBearerRefused}
	}
	if err != nil {
		g.refuse(w, r, err)
		return admitted{}, false
	}
	claims, err := g.provider.VerifyToken(r.Context(), token)
	if err != nil {
		g.refuse(w, r, err)
		return admitted{}, false
	}
	if claims == nil {
		g.refuse(w, r, Invalid("no_claims", nil))
		return admitted{}, false
	}
	if err := g.dpop.check(w, r, token, used, claims); err != nil {
		g.refuse(w, r, err)
		return admitted{}, false
	}
	if !g.policy.grantsAll(claims, g.required) {
		g.refuse(w, r, &TokenError{Kind: ErrInsufficientScope, Reason: "missing_scope", Scopes: g.required})
		return admitted{}, false
	}
	var info *requestInfo
	var read *readBuffers
	if r.Method == http.MethodPost {
		post := &postInfo{requestInfo: requestInfo{claims: claims, token: token}}
		info, read = &post.requestInfo, &post.read
	} else {
		info = &requestInfo{claims: claims, token: token}
	}
	ctx := withRequestInfo(r.Context(), info)
	if id := headerValue(r.Header, headerSessionID); id != "" {
		// mcp-go checks the session of a POST, but not of a GET stream
		// or a resumption: every verb is checked here.
		if !sessionUsable(id, claims, g.lifetime, time.Now()) {
			g.refuse(w, r, errUnknownSession)
			return admitted{}, false
		}
		info.checkedSession = id
	} else if len(r.Header[headerLastEventID]) > 0 {
		// Events recorded outside a session (stateless servers) are
		// shared by every caller: nobody resumes them.
		g.refuse(w, r, errUnknownSession)
		return admitted{}, false
	}
	var initialize, mayStream, bodyDeadline bool
	if r.Method == http.MethodPost {
		var err error
		if initialize, mayStream, bodyDeadline, err = g.inspect(info, read, w, r); err != nil {
			if bodyDeadline {
				setReadDeadline(w, time.Time{})
			}
			g.refuse(w, r, err)
			return admitted{}, false
		}
	}
	var a admitted
	if !claims.ExpiresAt.IsZero() && (r.Method != http.MethodPost || mayStream) {
		// A stream (GET, subscriptions/listen, a POST answered with SSE)
		// ends when its token does, and the client comes back with a
		// fresh one; a token accepted within the provider's leeway gets
		// streamGrace.
		ends := latest(claims.ExpiresAt, time.Now()).Add(streamGrace)
		if r.ProtoMajor == 1 && setReadDeadline(w, ends) {
			// This replaces the body's deadline.
			bodyDeadline = false
			a.ends, a.connEnds = ends, true
		} else {
			ctx, a.cancel = context.WithDeadline(ctx, ends)
		}
	}
	if bodyDeadline {
		// The deadline was for the body: a request that answers at once
		// runs without one.
		setReadDeadline(w, time.Time{})
	}
	if initialize {
		w = &sessionCheck{ResponseWriter: w, g: g, r: r, claims: claims, now: time.Now()}
	}
	a.w, a.r = w, r.WithContext(ctx)
	return a, true
}

// headerValue is h.Get(key) for a key already in canonical form, which
// spares the per-request canonicalization of the key.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// unreadBodyWait is how long the rest of a refused request's body may take
// to arrive before the connection is closed.
const unreadBodyWait = time.Second

// streamGrace is how long past its token's expiry a request may run.
const streamGrace = 5 * time.Second

// On HTTP/1, a request ends at its deadline through the connection: once
// the body is read, net/http watches the connection with a background read
// and cancels the request's context when that read fails, here at the read
// deadline. That costs no allocation, where a context deadline costs four
// on every call (BenchmarkMiddleware). net/http then cancels the whole
// connection's context, which later requests on the connection would
// inherit, so endOnConnection, run when the request is done, lifts the
// deadline and closes the connection if the deadline may have fired.
// A middleware that recovers panics around this one must let
// http.ErrAbortHandler through, as net/http expects of handlers.
func endOnConnection(w http.ResponseWriter, ends time.Time) {
	setReadDeadline(w, time.Time{})
	if time.Now().After(ends.Add(-deadlineMargin)) {
		panic(http.ErrAbortHandler) // net/http closes the connection, quietly
	}
}

// deadlineMargin is how close to its deadline a request must end for its
// connection to be closed rather than kept alive.
const deadlineMargin = 50 * time.Millisecond

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sessionCheck makes sure that the session ID an initialize response
// carries is bound to the caller: a server built without SessionBinding
// would otherwise hand out sessions anyone could use.
type sessionCheck struct {
	http.ResponseWriter
	g       *guard
	r       *http.Request
	claims  *Claims
	now     time.Time
	checked bool
	refused bool
}

func (s *sessionCheck) WriteHeader(status int) {
	if s.checked {
		if !s.refused {
			s.ResponseWriter.WriteHeader(status)
		}
		return
	}
	s.checked = true
	h := s.ResponseWriter.Header()
	if id := h.Get(server.HeaderKeySessionID); id != "" && !sessionUsable(id, s.claims, s.g.lifetime, s.now) {
		s.refused = true
		h.Del(server.HeaderKeySessionID)
		s.g.log.Error("auth: the MCP server minted a session ID that is not bound to its caller; " +
			"pass auth.SessionBinding(secret) to server.NewStreamableHTTPServer (WithProvider does it for you)")
		s.g.refuse(s.ResponseWriter, s.r, errUnboundSession)
		return
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *sessionCheck) Write(b []byte) (int, error) {
	if !s.checked {
		s.WriteHeader(http.StatusOK)
	}
	if s.refused {
		return len(b), nil
	}
	return s.ResponseWriter.Write(b)
}

func (s *sessionCheck) Flush() {
	if s.refused {
		return
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *sessionCheck) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Refusals of a request's content rather than its token.
var (
	errNotification   = errors.New("auth: notification not bound to the caller")
	errListenDenied   = errors.New("auth: subscription to a resource the caller may not read")
	errOrigin         = errors.New("auth: origin not allowed")
	errUnknownSession = errors.New("auth: session unknown, ended, expired or another caller's")
	errUnboundSession = errors.New("auth: the MCP server minted an unbound session ID")
	errTasks          = errors.New("auth: tasks are not available")
)

// inspect reads the JSON-RPC message of a POST once, hands the body on
// untouched, and refuses what the caller may not do: a notification that is
// not bound to the caller's session (in protocol 2026-07-28, which has no
// sessions, any notification: mcp-go would let one caller cancel another's
// request), a task (mcp-go v1.2.1 does not tie tasks to their creator), or
// an operation whose declared scopes the token lacks. It reports whether
// the request opens a session, whether its answer may be a stream, and
// whether the body's read deadline is still to be replaced or lifted (see
// readMessage), refused or not.
func (g *guard) inspect(info *requestInfo, read *readBuffers, w http.ResponseWriter, r *http.Request) (initialize, mayStream, bodyDeadline bool, err error) {
	claims := info.claims
	m, bodyDeadline, err := readMessage(w, r, g.maxBody, g.bodyWait, read)
	if err != nil || m == nil {
		return false, false, bodyDeadline, err
	}
	info.op = operation{method: m.Method, known: true}
	if m.isNotification() {
		if isModern(r.Header, m) ||
			(m.Method == string(mcp.MethodNotificationCancelled) && r.Header.Get(server.HeaderKeySessionID) == "") {
			return false, false, bodyDeadline, errNotification
		}
	} else {
		mayStream = !quickMethods[m.Method]
	}
	if m.usesTasks() {
		return false, false, bodyDeadline, &taskRefusal{id: m.ID.raw}
	}
	if g.policy != nil {
		if m.Method == string(mcp.MethodSubscriptionsListen) && !g.policy.listenAllowed(claims, m) {
			return false, false, bodyDeadline, errListenDenied
		}
		if needed := g.policy.neededScopes(m); !g.policy.grantsAll(claims, needed) {
			// One challenge with every scope the operation needs.
			return false, false, bodyDeadline, &TokenError{Kind: ErrInsufficientScope, Reason: "missing_operation_scope",
				Scopes: cleanScopes(append(append([]string(nil), g.required...), needed...))}
		}
		if m.Method == string(mcp.MethodToolsCall) {
			// Lets a Policy's list filter pass the called tool on to its
			// handler, which explains a refusal instead of "not found".
			info.op.name = m.paramsName()
		}
	}
	initialize = m.Method == string(mcp.MethodInitialize) && !isModern(r.Header, m)
	return initialize, mayStream, bodyDeadline, nil
}

// quickMethods answer at once, never with a stream that could outlive the
// token; every other method (tools/call, subscriptions/listen, ...) gets a
// deadline at the token's expiry. A deadline costs four allocations, so it
// is paid only where it may be needed. "" is a response or no message.
var quickMethods = map[string]bool{
	"": true, string(mcp.MethodInitialize): true, string(mcp.MethodPing): true,
	string(mcp.MethodToolsList): true, string(mcp.MethodPromptsList): true,
	string(mcp.MethodResourcesList): true, string(mcp.MethodResourcesTemplatesList): true,
}

// taskRefusal answers a task request with a JSON-RPC error for its id.
type taskRefusal struct{ id []byte }

func (t *taskRefusal) Error() string { return errTasks.Error() }
func (t *taskRefusal) Unwrap() error { return errTasks }

// credential takes the token from the Authorization header, the only place
// a token is accepted (never the query string or the body), with the
// scheme it came with: Bearer (RFC 6750) or DPoP (RFC 9449 §7.1). With
// checkSyntax false it leaves the token's bytes to the provider, which
// checks them itself (see caller.ChecksTokenSyntax).
func credential(h http.Header, maxBytes int, checkSyntax bool) (string, credScheme, error) {
	values := h[headerAuthorize]
	switch {
	case len(values) == 0:
		return "", usedNone, &TokenError{Kind: ErrNoToken, Reason: "no_header"}
	case len(values) > 1:
		return "", usedNone, Invalid("several_authorization_headers", nil)
	}
	v := values[0]
	if len(v) > maxBytes {
		return "", usedNone, Invalid("header_too_large", nil)
	}
	scheme, rest, _ := strings.Cut(v, " ")
	used := schemeOf(scheme)
	if used == usedNone {
		return "", usedNone, &TokenError{Kind: ErrNoToken, Reason: "unknown_scheme"}
	}
	token := strings.TrimLeft(rest, " ")
	if token == "" || checkSyntax && !isB64Token(token) {
		return "", used, Invalid("malformed_header", nil)
	}
	return token, used, nil
}

func schemeOf(name string) credScheme {
	switch {
	case strings.EqualFold(name, schemeBearer):
		return usedBearer
	case strings.EqualFold(name, schemeDPoP):
		return usedDPoP
	}
	return usedNone
}

// usedSchemeOf is the scheme a refused request's credentials came with, as
// far as this endpoint speaks it.
func (g *guard) usedSchemeOf(h http.Header) credScheme {
	v := h[headerAuthorize]
	if len(v) != 1 {
		return usedNone
	}
	scheme, _, _ := strings.Cut(v[0], " ")
	used := schemeOf(scheme)
	if used == usedDPoP && g.dpop.mode == DPoPDisabled {
		return usedNone
	}
	return used
}

// isB64Token reports whether s matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It rules out a second token, spaces and control characters.
//
// Cost: a request pays it over its whole token (about 1 KB for Descope)
// unless its provider checks token syntax itself, as descope.Provider
// does. The padding is found from the end, and the rest is checked
// eight bytes at a time without a branch per byte, which takes about
// half the time of stopping at the first bad byte (BenchmarkMiddleware).
func isB64Token(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	s = s[:end]
	var bad byte
	for len(s) >= 8 {
		bad |= notB64Token[s[0]] | notB64Token[s[1]] | notB64Token[s[2]] | notB64Token[s[3]] |
			notB64Token[s[4]] | notB64Token[s[5]] | notB64Token[s[6]] | notB64Token[s[7]]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		bad |= notB64Token[s[i]]
	}
	return bad == 0
}

// notB64Token is 1 for the bytes that cannot appear in a b64token before
// its padding, 0 for the others.
var notB64Token = func() (t [256]byte) {
	for i := range t {
		t[i] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 0
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 0
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 0
	}
	for _, c := range "-._~+/" {
		t[c] = 0
	}
	return t
}()

// refuse is the one place where an error becomes a status, a challenge and
// a body.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	if unreadBody(r) {
		// net/http reads the rest of a body nobody read, to reuse the
		// connection: give it little time, so that a body that never
		// arrives does not hold the connection.
		setReadDeadline(w, time.Now().Add(unreadBodyWait))
	}
	h.Set(headerContentType, contentTypeJSON)
	h.Set("Cache-Control", "no-store")

	var status int
	var body string
	var te *TokenError
	var task *taskRefusal
	switch {
	case errors.Is(err, errOrigin):
		status, body = http.StatusForbidden, bodyOrigin
	case errors.Is(err, errUnknownSession):
		status, body = http.StatusNotFound, bodyUnknownSession
		h.Set(headerContentType, "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
	case errors.Is(err, errUnboundSession):
		status, body = http.StatusInternalServerError, bodyUnbound
	case errors.As(err, &task):
		id := "null"
		if json.Valid(task.id) {
			id = string(task.id)
		}
		status, body = http.StatusOK, bodyTasksBefore+id+bodyTasksAfter
	case errors.Is(err, errBatch):
		status, body = http.StatusBadRequest, bodyBatch
	case errors.Is(err, errRepeatedParams):
		status, body = http.StatusBadRequest, bodyRepeated
	case errors.Is(err, errBodyTooLarge):
		status, body = http.StatusRequestEntityTooLarge, bodyTooLarge
	case errors.Is(err, errBodyUnreadable):
		status, body = http.StatusBadRequest, bodyUnreadable
	case errors.Is(err, errNotification):
		status, body = http.StatusBadRequest, bodyNotification
	case errors.Is(err, errListenDenied):
		status, body = http.StatusForbidden, bodyListenDenied
	case errors.Is(err, ErrUnavailable), errors.Is(err, dpop.ErrCacheFull):
		// A full replay cache is a flood, not this client's fault.
		status, body = http.StatusServiceUnavailable, bodyUnavailable
		h.Set(headerRetryAfter, retryAfterSeconds)
	case errors.Is(err, ErrNoToken):
		status, body = http.StatusUnauthorized, bodyNoToken
		h[headerChallenge] = slices.Clone(g.challengeNoToken)
	case errors.Is(err, ErrInsufficientScope):
		status, body = http.StatusForbidden, bodyInsufficient
		scopes := g.required
		if errors.As(err, &te) && len(te.Scopes) > 0 {
			scopes = te.Scopes
		}
		h[headerChallenge] = g.challenges(g.usedSchemeOf(r.Header), "insufficient_scope", descInsufficient, scopes)
	case errors.Is(err, dpop.ErrUseNonce) && g.dpop.nonces != nil:
		status, body = http.StatusUnauthorized, bodyUseNonce
		h[headerChallenge] = g.challenges(usedDPoP, "use_dpop_nonce", descUseNonce, g.required)
		h.Set(headerNonce, g.dpop.nonces.current())
	case errors.Is(err, dpop.ErrInvalidProof), errors.Is(err, dpop.ErrUseNonce):
		status, body = http.StatusUnauthorized, bodyInvalidProof
		h[headerChallenge] = g.challenges(usedDPoP, "invalid_dpop_proof", descInvalidProof, g.required)
	case errors.Is(err, errBoundAsBearer):
		status, body = http.StatusUnauthorized, bodyBoundBearer
		h[headerChallenge] = g.challenges(usedBearer, "invalid_token", descBoundBearer, g.required)
	case errors.Is(err, errBearerRefused):
		status, body = http.StatusUnauthorized, bodyDPoPRequired
		h[headerChallenge] = g.challenges(usedBearer, "invalid_token", descDPoPRequired, g.required)
	default:
		// ErrInvalidToken, and any error a provider did not classify:
		// refusing is the safe answer.
		status, body = http.StatusUnauthorized, bodyInvalidToken
		if used := g.usedSchemeOf(r.Header); used == usedDPoP {
			h[headerChallenge] = g.challenges(usedDPoP, "invalid_token", descInvalidToken, g.required)
		} else {
			h[headerChallenge] = slices.Clone(g.challengeInvalid)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))

	// Debug only: a flood of bad tokens must not flood the logs. Outages
	// are reported once by the provider, not once per request.
	g.log.LogAttrs(r.Context(), slog.LevelDebug, "auth: request refused",
		slog.Int("status", status),
		slog.String("reason", reasonOf(err)),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path))
}

// challenges renders the WWW-Authenticate values of a refusal: one
// challenge per scheme the endpoint accepts, Bearer first, each naming the
// scopes and the metadata URL. The error goes on the scheme the request
// used (RFC 9449 §7.2), or, when that scheme is not accepted here, on the
// one that is; a request without credentials gets no error.
func (g *guard) challenges(used credScheme, code, description string, scopes []string) []string {
	bearer, withDPoP := g.dpop.mode != DPoPRequired, g.dpop.mode != DPoPDisabled
	var out []string
	if bearer {
		if used == usedBearer || !withDPoP {
			out = append(out, challenge(schemeBearer, "", code, description, scopes, g.metadataParam))
		} else {
			out = append(out, challenge(schemeBearer, "", "", "", scopes, g.metadataParam))
		}
	}
	if withDPoP {
		if used == usedDPoP || !bearer {
			out = append(out, challenge(schemeDPoP, g.dpop.algs, code, description, scopes, g.metadataParam))
		} else {
			out = append(out, challenge(schemeDPoP, g.dpop.algs, "", "", scopes, g.metadataParam))
		}
	}
	return out
}

// challenge renders one WWW-Authenticate challenge. Parameters that are
// empty are left out.
func challenge(scheme, first, code, description string, scopes []string, metadataParam string) string {
	var b strings.Builder
	b.WriteString(scheme)
	sep := " "
	add := func(param string) {
		b.WriteString(sep)
		b.WriteString(param)
		sep = ", "
	}
	if first != "" {
		add(first)
	}
	if code != "" {
		add(`error="` + code + `"`)
	}
	if description != "" {
		add(`error_description="` + description + `"`)
	}
	if len(scopes) > 0 {
		add(`scope="` + quoteSafe(strings.Join(scopes, " ")) + `"`)
	}
	add(metadataParam)
	return b.String()
}

// quoteSafe drops the characters that could break out of a quoted-string.
// Values come from configuration, never from requests, so this only guards
// against configuration mistakes.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
