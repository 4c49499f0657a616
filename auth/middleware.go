package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
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
	bodyTooLarge     = `{"error":"invalid_request","error_description":"The request body is too large."}`
	bodyUnreadable   = `{"error":"invalid_request","error_description":"The request body could not be read."}`
	bodyListenDenied = `{"error":"access_denied","error_description":"The subscription names a resource this caller may not read."}`
	// A JSON-RPC error, so that clients of either protocol era read it.
	bodyNotification  = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Notifications are accepted only within the caller's own session."}}`
	headerAuthorize   = "Authorization"
	headerChallenge   = "WWW-Authenticate"
	schemeBearer      = "Bearer"
	contentTypeJSON   = "application/json"
	allowOriginAny    = "*"
	exposeChallenge   = "WWW-Authenticate"
	headerRetryAfter  = "Retry-After"
	headerContentType = "Content-Type"
)

// Option changes how the middleware behaves.
type Option func(*settings)

type settings struct {
	logger         *slog.Logger
	maxHeaderBytes int
	maxBodyBytes   int64
	policy         *Policy
	sessionSecret  []byte
}

// WithPolicy enforces pol at the transport: a tools/call (or prompts/get,
// resources/read, subscriptions/listen) whose declared scopes the token
// lacks is refused with 403 insufficient_scope before it runs, and the
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
// SessionBinding) when WithProvider serves the endpoint; Middleware and
// Handler do not own the MCP server and ignore it (with a warning in the
// log): pass SessionBinding to server.NewStreamableHTTPServer there. Replicas behind one
// load balancer must share it. Default: random per process.
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

	// Challenges that never change are rendered once.
	challengeNoToken string
	challengeInvalid string
	metadataParam    string
}

func collect(opts []Option) settings {
	s := settings{logger: slog.Default(), maxHeaderBytes: DefaultMaxHeaderBytes, maxBodyBytes: DefaultMaxBodyBytes}
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
	}
	g.metadataParam = `resource_metadata="` + quoteSafe(res.MetadataURL) + `"`
	g.challengeNoToken = challenge("", "", g.required, g.metadataParam)
	g.challengeInvalid = challenge("invalid_token", descInvalidToken, g.required, g.metadataParam)
	return g
}

// Middleware returns an http middleware that lets a request through only
// when it carries a bearer token the provider accepts and that grants the
// provider's required scopes. The verified claims reach the next handler
// through the request context (see ClaimsFromContext).
//
// Every method is guarded except OPTIONS, so that CORS preflight requests,
// which never carry credentials, still reach the MCP server's CORS handling.
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
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.serve(w, r, next)
		})
	}
}

func (g *guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if r.Method == http.MethodOptions {
		next.ServeHTTP(w, r)
		return
	}
	token, err := bearerToken(r.Header, g.maxBytes)
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	claims, err := g.provider.VerifyToken(r.Context(), token)
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	if claims == nil {
		g.refuse(w, r, Invalid("no_claims", nil))
		return
	}
	if !g.policy.grantsAll(claims, g.required) {
		g.refuse(w, r, &TokenError{Kind: ErrInsufficientScope, Reason: "missing_scope", Scopes: g.required})
		return
	}
	ctx := WithClaims(r.Context(), claims)
	if r.Method == http.MethodPost {
		var err error
		if ctx, err = g.inspect(ctx, r, claims); err != nil {
			g.refuse(w, r, err)
			return
		}
	}
	next.ServeHTTP(w, r.WithContext(ctx))
}

// Refusals of a request's content rather than its token.
var (
	errNotification = errors.New("auth: notification not bound to the caller")
	errListenDenied = errors.New("auth: subscription to a resource the caller may not read")
)

// inspect reads the JSON-RPC messages of a POST once, hands the body on
// untouched, and refuses what the caller may not do: a notification that is
// not bound to the caller's session (in protocol 2026-07-28, which has no
// sessions, any notification: mcp-go would let one caller cancel another's
// request), or an operation whose declared scopes the token lacks.
func (g *guard) inspect(ctx context.Context, r *http.Request, claims *Claims) (context.Context, error) {
	msgs, err := readMessages(r, g.maxBody)
	if err != nil {
		return ctx, err
	}
	var needed []string
	for i := range msgs {
		m := &msgs[i]
		if m.isNotification() && (isModern(r.Header, m) ||
			(m.Method == string(mcp.MethodNotificationCancelled) && r.Header.Get(server.HeaderKeySessionID) == "")) {
			return ctx, errNotification
		}
		if g.policy == nil {
			continue
		}
		needed = append(needed, g.policy.neededScopes(m)...)
		if m.Method == string(mcp.MethodSubscriptionsListen) && !g.policy.listenAllowed(claims, m) {
			return ctx, errListenDenied
		}
	}
	if len(needed) > 0 && !g.policy.grantsAll(claims, needed) {
		// One challenge with every scope the operation needs.
		return ctx, &TokenError{Kind: ErrInsufficientScope, Reason: "missing_operation_scope",
			Scopes: cleanScopes(append(append([]string(nil), g.required...), needed...))}
	}
	if g.policy != nil && len(msgs) == 1 && msgs[0].Method == string(mcp.MethodToolsCall) {
		// Lets a Policy's list filter pass the called tool on to its
		// handler, which explains a refusal instead of "not found".
		ctx = withOperation(ctx, &msgs[0])
	}
	return ctx, nil
}

// bearerToken takes the token from the Authorization header, the only place
// a token is accepted (never the query string or the body).
func bearerToken(h http.Header, maxBytes int) (string, error) {
	values := h[headerAuthorize]
	switch {
	case len(values) == 0:
		return "", &TokenError{Kind: ErrNoToken, Reason: "no_header"}
	case len(values) > 1:
		return "", Invalid("several_authorization_headers", nil)
	}
	v := values[0]
	if len(v) > maxBytes {
		return "", Invalid("header_too_large", nil)
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, schemeBearer) {
		return "", &TokenError{Kind: ErrNoToken, Reason: "not_bearer"}
	}
	token := strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return "", Invalid("malformed_header", nil)
	}
	return token, nil
}

// isB64Token reports whether s matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It rules out a second token, spaces and control characters.
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar marks the characters of a b64token before its padding.
var b64TokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// refuse is the one place where an error becomes a status, a challenge and
// a body.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	if r.Header.Get("Origin") != "" {
		// Browser clients must be able to read the challenge to start
		// the OAuth flow. Nothing in a refusal is private.
		h.Set("Access-Control-Allow-Origin", allowOriginAny)
		h.Set("Access-Control-Expose-Headers", exposeChallenge)
	}
	h.Set(headerContentType, contentTypeJSON)
	h.Set("Cache-Control", "no-store")

	var status int
	var body string
	switch {
	case errors.Is(err, errBodyTooLarge):
		status, body = http.StatusRequestEntityTooLarge, bodyTooLarge
	case errors.Is(err, errBodyUnreadable):
		status, body = http.StatusBadRequest, bodyUnreadable
	case errors.Is(err, errNotification):
		status, body = http.StatusBadRequest, bodyNotification
	case errors.Is(err, errListenDenied):
		status, body = http.StatusForbidden, bodyListenDenied
	case errors.Is(err, ErrUnavailable):
		status, body = http.StatusServiceUnavailable, bodyUnavailable
		h.Set(headerRetryAfter, retryAfterSeconds)
	case errors.Is(err, ErrNoToken):
		status, body = http.StatusUnauthorized, bodyNoToken
		h.Set(headerChallenge, g.challengeNoToken)
	case errors.Is(err, ErrInsufficientScope):
		status, body = http.StatusForbidden, bodyInsufficient
		scopes := g.required
		var te *TokenError
		if errors.As(err, &te) && len(te.Scopes) > 0 {
			scopes = te.Scopes
		}
		h.Set(headerChallenge, challenge("insufficient_scope", descInsufficient, scopes, g.metadataParam))
	default:
		// ErrInvalidToken, and any error a provider did not classify:
		// refusing is the safe answer.
		status, body = http.StatusUnauthorized, bodyInvalidToken
		h.Set(headerChallenge, g.challengeInvalid)
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

// challenge renders a Bearer WWW-Authenticate value. Parameters that are
// empty are left out.
func challenge(code, description string, scopes []string, metadataParam string) string {
	var b strings.Builder
	b.WriteString(schemeBearer)
	sep := " "
	add := func(param string) {
		b.WriteString(sep)
		b.WriteString(param)
		sep = ", "
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
