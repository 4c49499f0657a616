package descopetest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OAuth protocol values.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"

	authNone        = "none"
	authSecretPost  = "client_secret_post"
	authSecretBasic = "client_secret_basic"

	// maxBodyBytes caps the request bodies the server reads.
	maxBodyBytes = 64 << 10
)

// client is a client registered through dynamic client registration.
type client struct {
	id       string
	secret   string // empty for public clients
	metadata clientMetadata
}

// allows reports whether the client registered the grant type.
func (c *client) allows(grantType string) bool {
	return slices.Contains(c.metadata.GrantTypes, grantType)
}

// authCode is an authorization code waiting to be redeemed.
type authCode struct {
	clientID      string
	redirectURI   string
	redirectGiven bool // the authorization request named redirect_uri
	challenge     string
	scope         string
	resources     []string
	user          User
	expires       time.Time
	jkt           string // dpop_jkt: the key the token request must prove
}

// grant is what a refresh token stands for.
type grant struct {
	clientID  string
	scope     string
	resources []string
	user      User
	expires   time.Time
	jkt       string // a public client's DPoP key: refreshes must prove it
}

// clientMetadata is the client metadata of dynamic client registration
// (RFC 7591) that the server understands.
type clientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// registration is the answer to a successful client registration.
type registration struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	clientMetadata
}

// tokenResponse is the answer of the token endpoint.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// oauthError is an OAuth error answer.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// errorf returns an OAuth error with HTTP status 400.
func errorf(code, format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: code, Description: fmt.Sprintf(format, args...)}
}

// write sends the error as a JSON answer.
func (e *oauthError) write(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, e)
}

// handleRegister serves dynamic client registration (RFC 7591).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		e := errorf("invalid_client_metadata", "cannot read request body: %v", err)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			e.status = http.StatusRequestEntityTooLarge
		}
		e.write(w)
		return
	}
	var md clientMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		errorf("invalid_client_metadata", "request body is not a JSON client metadata object: %v", err).write(w)
		return
	}
	if e := validateClientMetadata(&md); e != nil {
		e.write(w)
		return
	}

	c := &client{id: randomID("DS", 27), metadata: md}
	if md.TokenEndpointAuthMethod != authNone {
		c.secret = randomID("", 43)
	}
	s.mu.Lock()
	s.clients[c.id] = c
	s.mu.Unlock()

	resp := registration{
		ClientID:         c.id,
		ClientSecret:     c.secret,
		ClientIDIssuedAt: s.now().Unix(),
		clientMetadata:   md,
	}
	if c.secret != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

// validateClientMetadata checks registration metadata and fills in defaults.
func validateClientMetadata(md *clientMetadata) *oauthError {
	if len(md.RedirectURIs) == 0 {
		return errorf("invalid_client_metadata", "redirect_uris is required")
	}
	for _, u := range md.RedirectURIs {
		if err := checkAbsoluteURL(u); err != nil {
			return errorf("invalid_redirect_uri", "redirect_uris: %v", err)
		}
	}
	switch md.TokenEndpointAuthMethod {
	case "":
		md.TokenEndpointAuthMethod = authNone
	case authNone, authSecretPost, authSecretBasic:
	default:
		return errorf("invalid_client_metadata", "unsupported token_endpoint_auth_method %q", md.TokenEndpointAuthMethod)
	}
	if len(md.GrantTypes) == 0 {
		md.GrantTypes = []string{grantAuthorizationCode, grantRefreshToken}
	}
	for _, g := range md.GrantTypes {
		if g != grantAuthorizationCode && g != grantRefreshToken {
			return errorf("invalid_client_metadata", "unsupported grant type %q", g)
		}
	}
	if len(md.ResponseTypes) == 0 {
		md.ResponseTypes = []string{"code"}
	}
	for _, t := range md.ResponseTypes {
		if t != "code" {
			return errorf("invalid_client_metadata", "unsupported response type %q", t)
		}
	}
	md.Scope = normalizeScope(md.Scope)
	return nil
}

// checkAbsoluteURL reports why u is not an absolute URL without a fragment,
// as redirect URIs and resource indicators must be.
func checkAbsoluteURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("invalid URL %q", u)
	case !p.IsAbs():
		return fmt.Errorf("%q is not an absolute URL", u)
	case p.Fragment != "" || strings.Contains(u, "#"):
		return fmt.Errorf("%q has a fragment", u)
	case (p.Scheme == "http" || p.Scheme == "https") && p.Host == "":
		return fmt.Errorf("%q has no host", u)
	}
	return nil
}

// lookupClient returns the registered client with the given ID, or nil.
func (s *Server) lookupClient(id string) *client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients[id]
}

// handleAuthorize serves the authorization endpoint. It signs the server's
// user in at once and redirects back to the client with a code.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		errorf("invalid_request", "cannot parse request: %v", err).write(w)
		return
	}
	q := r.Form

	// Until the redirect URI is known to be the client's, errors are
	// answered here rather than sent to the redirect URI.
	clientID := q.Get("client_id")
	if clientID == "" {
		errorf("invalid_request", "client_id is required").write(w)
		return
	}
	c := s.lookupClient(clientID)
	if s.shapes.cimd != cimdOff && isClientIDURL(clientID) {
		var e *oauthError
		if c, e = s.clientDocumentClient(r.Context(), clientID, q.Get("redirect_uri")); e != nil {
			e.write(w)
			return
		}
	}
	if c == nil {
		errorf("invalid_request", "unknown client_id %q", clientID).write(w)
		return
	}
	redirectURI := q.Get("redirect_uri")
	redirectGiven := redirectURI != ""
	switch {
	case redirectGiven && !slices.Contains(c.metadata.RedirectURIs, redirectURI):
		errorf("invalid_request", "redirect_uri %q is not registered for the client", redirectURI).write(w)
		return
	case !redirectGiven && len(c.metadata.RedirectURIs) != 1:
		errorf("invalid_request", "redirect_uri is required").write(w)
		return
	case !redirectGiven:
		redirectURI = c.metadata.RedirectURIs[0]
	}

	state := q.Get("state")
	var iss string // RFC 9207: empty params are left out
	if s.shapes.issInResponse {
		iss = s.authorizationIssuer(r.URL.Path)
	}
	fail := func(e *oauthError) {
		redirect(w, redirectURI, url.Values{
			"error":             {e.Code},
			"error_description": {e.Description},
			"state":             {state},
			"iss":               {iss},
		})
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		fail(errorf("invalid_request", "response_type is required"))
		return
	case rt != "code" || !slices.Contains(c.metadata.ResponseTypes, rt):
		fail(errorf("unsupported_response_type", "response_type %q is not supported", rt))
		return
	}
	if !c.allows(grantAuthorizationCode) {
		fail(errorf("unauthorized_client", "the client did not register the authorization_code grant"))
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		fail(errorf("invalid_request", "code_challenge is required (PKCE)"))
		return
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		if m == "" {
			m = "plain"
		}
		fail(errorf("invalid_request", "code_challenge_method %q is not supported; use S256", m))
		return
	}
	if !isS256Challenge(challenge) {
		fail(errorf("invalid_request", "code_challenge is not a base64url-encoded SHA-256 hash"))
		return
	}
	resources := q["resource"]
	for _, res := range resources {
		if err := checkAbsoluteURL(res); err != nil {
			fail(errorf("invalid_target", "resource: %v", err))
			return
		}
	}
	scope := c.metadata.Scope
	if q.Has("scope") {
		scope = normalizeScope(q.Get("scope"))
	}
	jkt, e := dpopJKT(q)
	if e != nil {
		fail(e)
		return
	}

	code := randomToken()
	ac := &authCode{
		clientID:      c.id,
		redirectURI:   redirectURI,
		redirectGiven: redirectGiven,
		challenge:     challenge,
		scope:         scope,
		resources:     slices.Clone(resources),
		user:          s.currentUser(),
		expires:       s.now().Add(codeLifetime),
		jkt:           jkt,
	}
	s.mu.Lock()
	s.codes[code] = ac
	s.mu.Unlock()
	redirect(w, redirectURI, url.Values{"code": {code}, "state": {state}, "iss": {iss}})
}

// redirect answers with a 302 to redirectURI with params added to its query;
// empty params are left out.
func redirect(w http.ResponseWriter, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil { // checked at registration
		http.Error(w, "invalid redirect URI", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// clientForm reads a form POST to the token or revocation endpoint (size
// capped) and authenticates its client. It answers the request itself and
// returns false when either fails.
func (s *Server) clientForm(w http.ResponseWriter, r *http.Request) (*client, bool) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		errorf("invalid_request", "cannot parse form body: %v", err).write(w)
		return nil, false
	}
	c, e := s.authenticateClient(w, r)
	if e != nil {
		e.write(w)
		return nil, false
	}
	return c, true
}

// handleToken serves the token endpoint.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Pragma", "no-cache")
	c, ok := s.clientForm(w, r)
	if !ok {
		return
	}
	jkt, e := s.checkDPoP(w, r)
	if e != nil {
		e.write(w)
		return
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "":
		e = errorf("invalid_request", "grant_type is required")
	case grantAuthorizationCode:
		resp, e = s.redeemCode(c, r.PostForm, jkt)
	case grantRefreshToken:
		resp, e = s.redeemRefreshToken(c, r.PostForm, jkt)
	default:
		e = errorf("unsupported_grant_type", "grant_type %q is not supported", gt)
	}
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient identifies and authenticates the client of a token or
// revocation request: public clients by client_id, confidential ones by
// client_secret_basic or client_secret_post.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request) (*client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	unauthorized := func(format string, args ...any) *oauthError {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="descopetest"`)
		}
		e := errorf("invalid_client", format, args...)
		e.status = http.StatusUnauthorized
		return e
	}
	if basic {
		// RFC 6749 section 2.3.1: both are form-encoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, unauthorized("malformed basic credentials")
		}
		if formID := r.PostForm.Get("client_id"); formID != "" && formID != id {
			return nil, errorf("invalid_request", "client_id does not match the basic credentials")
		}
		if r.PostForm.Has("client_secret") {
			return nil, errorf("invalid_request", "more than one client authentication method used")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, unauthorized("client_id is required")
	}
	c := s.lookupClient(id)
	if c == nil {
		return nil, unauthorized("unknown client %q", id)
	}
	if c.secret != "" {
		if secret == "" {
			return nil, unauthorized("client authentication required")
		}
		if subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
			return nil, unauthorized("wrong client secret")
		}
	}
	return c, nil
}

// redeemCode carries out the authorization code grant; jkt is the
// thumbprint of the request's DPoP key, or "".
func (s *Server) redeemCode(c *client, form url.Values, jkt string) (*tokenResponse, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, errorf("invalid_request", "code is required")
	}
	// A code is spent by any attempt to redeem it.
	s.mu.Lock()
	ac := s.codes[code]
	delete(s.codes, code)
	s.mu.Unlock()

	switch {
	case ac == nil:
		return nil, errorf("invalid_grant", "unknown or already used authorization code")
	case ac.clientID != c.id:
		return nil, errorf("invalid_grant", "authorization code was issued to another client")
	case !s.now().Before(ac.expires):
		return nil, errorf("invalid_grant", "authorization code expired")
	}
	if ru := form.Get("redirect_uri"); ru != ac.redirectURI && (ac.redirectGiven || ru != "") {
		return nil, errorf("invalid_grant", "redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	if verifier == "" {
		return nil, errorf("invalid_request", "code_verifier is required (PKCE)")
	}
	if !isVerifier(verifier) {
		return nil, errorf("invalid_grant", "malformed code_verifier")
	}
	if subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(ac.challenge)) != 1 {
		return nil, errorf("invalid_grant", "code_verifier does not match code_challenge")
	}
	if res := form["resource"]; len(res) > 0 && !sameSet(res, ac.resources) {
		return nil, errorf("invalid_target", "resource does not match the authorization request")
	}
	if ac.jkt != "" && ac.jkt != jkt {
		return nil, errorf("invalid_grant", "the DPoP proof's key is not the dpop_jkt of the authorization request")
	}
	g := &grant{clientID: c.id, scope: ac.scope, resources: ac.resources, user: ac.user}
	if c.secret == "" {
		// RFC 9449 §5: a public client's refresh token is bound to its key.
		g.jkt = jkt
	}
	return s.issue(c, ac.user, ac.scope, ac.resources, g, jkt), nil
}

// redeemRefreshToken carries out the refresh token grant. The refresh
// token is replaced by a new one; a request that fails leaves it usable.
func (s *Server) redeemRefreshToken(c *client, form url.Values, jkt string) (*tokenResponse, *oauthError) {
	if !c.allows(grantRefreshToken) {
		return nil, errorf("unauthorized_client", "the client did not register the refresh_token grant")
	}
	token := form.Get("refresh_token")
	if token == "" {
		return nil, errorf("invalid_request", "refresh_token is required")
	}
	now := s.now()
	s.mu.Lock()
	g, e := checkRefresh(s.refreshTokens[token], c, now, form, jkt)
	if e == nil || e.expired {
		delete(s.refreshTokens, token)
	}
	s.mu.Unlock()
	if e != nil {
		return nil, e.oauthError
	}

	scope, resources := g.scope, g.resources
	if form.Has("scope") {
		scope = normalizeScope(form.Get("scope"))
	}
	if res := form["resource"]; len(res) > 0 {
		resources = res
	}
	return s.issue(c, g.user, scope, resources, g, jkt), nil
}

// refreshError is a failed refresh; expired tells that the refresh token
// should be dropped.
type refreshError struct {
	*oauthError
	expired bool
}

// checkRefresh checks a refresh request for the grant g at time now. It
// narrows the scope and resources only within what g holds.
func checkRefresh(g *grant, c *client, now time.Time, form url.Values, jkt string) (*grant, *refreshError) {
	switch {
	case g == nil:
		return nil, &refreshError{oauthError: errorf("invalid_grant", "unknown, revoked or already used refresh token")}
	case g.clientID != c.id:
		return nil, &refreshError{oauthError: errorf("invalid_grant", "refresh token was issued to another client")}
	case !now.Before(g.expires):
		return nil, &refreshError{oauthError: errorf("invalid_grant", "refresh token expired"), expired: true}
	case g.jkt != "" && g.jkt != jkt:
		return nil, &refreshError{oauthError: errorf("invalid_grant", "the refresh token is bound to another DPoP key")}
	}
	if form.Has("scope") {
		granted := strings.Fields(g.scope)
		for _, sc := range strings.Fields(form.Get("scope")) {
			if !slices.Contains(granted, sc) {
				return nil, &refreshError{oauthError: errorf("invalid_scope", "scope %q was not granted", sc)}
			}
		}
	}
	for _, r := range form["resource"] {
		if !slices.Contains(g.resources, r) {
			return nil, &refreshError{oauthError: errorf("invalid_target", "resource %q was not granted", r)}
		}
	}
	return g, nil
}

// issue makes an access token for user with the given scope and resources
// and, if the client may refresh, a refresh token for the grant g, which
// holds the scope and resources that later refreshes may ask for. The
// token's aud is the resources the client named (RFC 8707), else the MCP
// Server URL, as Descope binds tokens to the console's MCP Server URL.
func (s *Server) issue(c *client, u User, scope string, resources []string, g *grant, jkt string) *tokenResponse {
	aud := slices.Clone(resources)
	if len(aud) == 0 {
		aud = s.defaultAudience()
	}
	claims, tokenType := s.accessClaims(u, c.id, scope, aud), "Bearer"
	if jkt != "" {
		claims["cnf"] = map[string]any{"jkt": jkt}
		tokenType = "DPoP"
	}
	resp := &tokenResponse{
		AccessToken: s.sign(nil, claims),
		TokenType:   tokenType,
		ExpiresIn:   s.expiresIn(),
		Scope:       scope,
	}
	if c.allows(grantRefreshToken) {
		next := *g
		next.expires = s.now().Add(refreshLifetime)
		rt := randomToken()
		s.mu.Lock()
		s.refreshTokens[rt] = &next
		s.mu.Unlock()
		resp.RefreshToken = rt
	}
	return resp
}

// handleRevoke serves token revocation (RFC 7009). Refresh tokens of the
// client are revoked; anything else is accepted and ignored, as the RFC
// asks.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clientForm(w, r)
	if !ok {
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		errorf("invalid_request", "token is required").write(w)
		return
	}
	s.mu.Lock()
	if g := s.refreshTokens[token]; g != nil && g.clientID == c.id {
		delete(s.refreshTokens, token)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// verifyAccessToken checks that raw is an unexpired access token this
// server signed with a published key, for one of its issuers, and returns
// its claims.
func (s *Server) verifyAccessToken(raw string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if key := s.publishedKey(kid); key != nil {
			return key, nil
		}
		return nil, fmt.Errorf("unknown key %q", kid)
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(s.now), jwt.WithExpirationRequired())
	if err != nil {
		return nil, err
	}
	if iss, _ := claims["iss"].(string); !s.knownIssuer(iss) {
		return nil, errors.New("unknown issuer")
	}
	return claims, nil
}

// handleUserInfo serves a minimal userinfo endpoint: it checks the access
// token, a bearer token or a DPoP-bound one with its proof, and answers
// with its sub, email and name claims.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	raw, scheme := accessToken(r)
	if raw == "" {
		refuseUserInfo(w, "", "")
		return
	}
	claims, err := s.verifyAccessToken(raw)
	code := "invalid_token"
	if err == nil {
		code = s.userInfoBinding(r, scheme, raw, claims)
	}
	if code != "" {
		refuseUserInfo(w, scheme, code)
		return
	}
	info := map[string]any{}
	for _, name := range []string{"sub", "email", "name"} {
		if v, ok := claims[name]; ok {
			info[name] = v
		}
	}
	writeJSON(w, http.StatusOK, info)
}

// normalizeScope returns scope with its values separated by single spaces.
func normalizeScope(scope string) string {
	return strings.Join(strings.Fields(scope), " ")
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// s256 returns the S256 code challenge of a PKCE code verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// isS256Challenge reports whether c looks like an S256 code challenge.
func isS256Challenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// isVerifier reports whether v is a well-formed PKCE code verifier
// (RFC 7636 section 4.1).
func isVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-._~", r):
		default:
			return false
		}
	}
	return true
}

// randomToken returns an unguessable opaque token.
func randomToken() string {
	return rand.Text() + rand.Text()
}

// idAlphabet is the alphabet of random IDs.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns prefix followed by n random letters and digits.
func randomID(prefix string, n int) string {
	var b strings.Builder
	b.Grow(len(prefix) + n)
	b.WriteString(prefix)
	buf := make([]byte, 1)
	for b.Len() < len(prefix)+n {
		if _, err := rand.Read(buf); err != nil {
			panic("descopetest: random: " + err.Error())
		}
		// 62*4 = 248: rejecting larger bytes keeps the choice uniform.
		if buf[0] < 248 {
			b.WriteByte(idAlphabet[buf[0]%62])
		}
	}
	return b.String()
}

// writeJSON answers with status and v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "descopetest: encode JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
