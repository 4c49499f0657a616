package descopetest

// dpop.go is DPoP (RFC 9449) on both sides of the fake: the token and
// userinfo endpoints check proofs, the token endpoint binds tokens to the
// proof's key and hands out nonces as Descope does, and DPoPKey is a
// client's key, with a transport that signs every request with it.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-go-contrib/descope/auth/dpop"
)

const (
	// nonceLifetime is how long a nonce of the token endpoint stays good.
	nonceLifetime = 5 * time.Minute

	// maxNonces bounds the nonces remembered at once.
	maxNonces = 4096

	// maxChallengeBody is how much of a 400 answer the transport reads to
	// find a use_dpop_nonce error; OAuth error bodies are far smaller.
	maxChallengeBody = 64 << 10
)

// dpopAlgorithms are the proof algorithms Descope accepts.
var dpopAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// proofChecks is the server's side of DPoP: one verifier per endpoint, so
// that each has its own replay cache, and the token endpoint's nonces.
type proofChecks struct {
	token    *dpop.Verifier // nonce required
	userInfo *dpop.Verifier // no nonce
	nonces   *tokenNonces
}

// newProofChecks returns the DPoP checks of a server whose clock is now.
// Nonces expire by now, but a proof's iat is checked against the real
// time: clients sign proofs with their own clocks (as DPoPKey does), and a
// test clock set far off would otherwise refuse every proof.
func newProofChecks(now func() time.Time) *proofChecks {
	n := &tokenNonces{now: now, m: make(map[string]time.Time)}
	token, err1 := dpop.NewVerifier(dpop.Options{Algorithms: dpopAlgorithms, Nonce: n.valid})
	userInfo, err2 := dpop.NewVerifier(dpop.Options{Algorithms: dpopAlgorithms})
	if err := errors.Join(err1, err2); err != nil {
		panic("descopetest: " + err.Error()) // fixed options
	}
	return &proofChecks{token: token, userInfo: userInfo, nonces: n}
}

// tokenNonces are the nonces the token endpoint has handed out.
type tokenNonces struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]time.Time // nonce → expiry
}

// issue returns a fresh nonce. When the map is full of live nonces, some
// go at random: a client holding one is asked again.
func (n *tokenNonces) issue() string {
	now := n.now()
	v := randomToken()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m) >= maxNonces {
		for k, exp := range n.m {
			if !now.Before(exp) || len(n.m) >= maxNonces {
				delete(n.m, k)
			}
		}
	}
	n.m[v] = now.Add(nonceLifetime)
	return v
}

func (n *tokenNonces) valid(_ context.Context, v string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp, ok := n.m[v]
	return ok && n.now().Before(exp)
}

// ExpireDPoPNonces makes every nonce the token endpoint has handed out
// stale, as their five minutes running out would: the next token request
// with a DPoP proof is refused with use_dpop_nonce and a new nonce. Use it
// to test that a client copes with a nonce that went stale between
// sign-in and refresh.
func (s *Server) ExpireDPoPNonces() {
	n := s.proofs.nonces
	n.mu.Lock()
	clear(n.m)
	n.mu.Unlock()
}

// checkDPoP checks the DPoP proof of a token request, if it has one, and
// returns the thumbprint to bind the token to ("" without a proof). Like
// Descope, it answers a proof without a current nonce with use_dpop_nonce
// and a DPoP-Nonce header; the request has then changed nothing (an
// authorization code is not spent), so the client can retry with the
// nonce.
func (s *Server) checkDPoP(w http.ResponseWriter, r *http.Request) (string, *oauthError) {
	proofs := r.Header.Values("DPoP")
	switch len(proofs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errorf("invalid_dpop_proof", "more than one DPoP header")
	}
	p, err := s.proofs.token.Verify(r.Context(), proofs[0], dpop.Request{Method: r.Method, URL: s.endpointURL(r)})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		w.Header().Set("DPoP-Nonce", s.proofs.nonces.issue())
		return "", errorf("use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
	case err != nil:
		return "", errorf("invalid_dpop_proof", "DPoP proof refused: %s", proofReason(err))
	}
	return p.Thumbprint, nil
}

// The authorization schemes of access tokens.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// accessToken returns the token of an "Authorization: Bearer" or
// "Authorization: DPoP" header and its scheme, spelled as above (the
// header's spelling does not matter), or "", "" for anything else.
func accessToken(r *http.Request) (token, scheme string) {
	name, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	switch {
	case !ok || token == "":
		return "", ""
	case strings.EqualFold(name, schemeBearer):
		return token, schemeBearer
	case strings.EqualFold(name, schemeDPoP):
		return token, schemeDPoP
	}
	return "", ""
}

// endpointURL is the URL a request was sent to, as a proof's htu names it:
// one of the server's own base URLs (the custom domain's, when the request
// came to it) and the path.
func (s *Server) endpointURL(r *http.Request) string { return s.requestBase(r) + r.URL.Path }

// proofReason is the fixed reason code of a refused proof, such as "htu",
// "iat" or "replay". A real server would not tell it to the client; the
// fake does because a test whose proof is refused wants to know why, and
// the code never holds text taken from the proof.
func proofReason(err error) string {
	if pe, ok := errors.AsType[*dpop.ProofError](err); ok {
		return pe.Reason
	}
	return "request unusable"
}

// userInfoBinding checks the DPoP side of a userinfo request whose access
// token, with claims, came in scheme: a token bound to a key (cnf.jkt)
// must come in the DPoP scheme with a proof by that key and for that
// token (RFC 9449 §7.1), an unbound one in the Bearer scheme. It returns
// the error code to refuse the request with, or "". Userinfo asks for no
// nonce.
func (s *Server) userInfoBinding(r *http.Request, scheme, token string, claims jwt.MapClaims) string {
	cnf, _ := claims["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	if scheme != schemeDPoP {
		if claims["cnf"] != nil {
			return "invalid_token"
		}
		return ""
	}
	if jkt == "" {
		return "invalid_token"
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return "invalid_dpop_proof"
	}
	_, err := s.proofs.userInfo.Verify(r.Context(), proofs[0], dpop.Request{
		Method: r.Method, URL: s.endpointURL(r), AccessToken: token, KeyThumbprint: jkt,
	})
	switch {
	case errors.Is(err, dpop.ErrKeyMismatch):
		return "invalid_token"
	case err != nil:
		return "invalid_dpop_proof"
	}
	return ""
}

// refuseUserInfo answers a userinfo request with 401 and a challenge for
// each scheme the endpoint accepts, Bearer first; the error code, when
// there is one, goes on the scheme the request used (RFC 9449 §7.2).
func refuseUserInfo(w http.ResponseWriter, scheme, code string) {
	bearer := `Bearer realm="descopetest"`
	withDPoP := `DPoP realm="descopetest", algs="` + strings.Join(dpopAlgorithms, " ") + `"`
	switch {
	case code == "":
	case scheme == schemeDPoP:
		withDPoP += `, error="` + code + `"`
	default:
		bearer += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", bearer)
	w.Header().Add("WWW-Authenticate", withDPoP)
	w.WriteHeader(http.StatusUnauthorized)
}

// MintBound is [Server.Mint] for a token bound to key: it carries cnf.jkt,
// key's thumbprint, as tokens issued for a DPoP proof do. Send it as
// "Authorization: DPoP <token>" with a proof from key, which is what
// [DPoPKey.Transport] does. A "cnf" entry in claims replaces the binding.
func (s *Server) MintBound(claims map[string]any, key *DPoPKey) string {
	c := map[string]any{"cnf": map[string]any{"jkt": key.Thumbprint()}}
	for k, v := range claims {
		c[k] = v
	}
	return s.Mint(c)
}

// DPoPKey is a client's proof-of-possession key (ECDSA P-256, proofs signed
// ES256), made at run time. It makes proofs, and a transport that sends
// every request with one. It is safe for concurrent use.
type DPoPKey struct {
	key   *ecdsa.PrivateKey
	thumb string

	mu     sync.Mutex
	nonces map[string]string // origin → its last DPoP-Nonce
}

// NewDPoPKey generates a key.
func NewDPoPKey() *DPoPKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("descopetest: cannot generate a P-256 key: " + err.Error()) // crypto/rand does not fail
	}
	thumb, err := dpop.Thumbprint(k.Public())
	if err != nil {
		panic("descopetest: " + err.Error()) // a P-256 key always has one
	}
	return &DPoPKey{key: k, thumb: thumb, nonces: make(map[string]string)}
}

// Thumbprint is the key's RFC 7638 thumbprint: the cnf.jkt of a token
// bound to it, and the value of an authorization request's dpop_jkt.
func (k *DPoPKey) Thumbprint() string { return k.thumb }

// Proof returns a fresh proof (new jti, iat now) for a request: method and
// url (htm, and htu once query and fragment are dropped), the access token
// it comes with ("" at a token endpoint) and the server's last nonce (""
// for none). It panics only if signing fails, which it cannot with the key
// NewDPoPKey makes.
func (k *DPoPKey) Proof(method, url, accessToken, nonce string) string {
	p, err := dpop.NewProof(k.key, dpop.ProofClaims{Method: method, URL: url, AccessToken: accessToken, Nonce: nonce})
	if err != nil {
		panic("descopetest: " + err.Error())
	}
	return p
}

// Transport returns a RoundTripper (over base, or http.DefaultTransport when
// nil) that makes any HTTP client speak DPoP with k: every request gets a
// fresh DPoP header; a request with "Authorization: Bearer <token>" is sent
// as "Authorization: DPoP <token>" with the token's hash in the proof (one
// already in the DPoP scheme, as clients that copy token_type "DPoP" into
// the header send it, keeps it); the last DPoP-Nonce of each origin goes
// into later proofs; and a use_dpop_nonce answer that brings a nonce (a 401
// whose DPoP challenge says so, or a 400 token error) is retried once with
// it, body and all. The caller's request is never changed.
//
// With it, an OAuth client that knows nothing of DPoP gets bound tokens at
// the fake's token endpoint and uses them at a DPoP-protected server.
func (k *DPoPKey) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &dpopTransport{k: k, base: base}
}

type dpopTransport struct {
	k    *DPoPKey
	base http.RoundTripper
}

func (t *dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, getBody := req.Body, req.GetBody
	if body != nil && body != http.NoBody && getBody == nil {
		// Nothing can make the body again, so it is kept for the retry.
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return nil, err
		}
		body = io.NopCloser(bytes.NewReader(b))
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	origin := originOf(req.URL)
	resp, err := t.send(req, body, getBody, t.k.nonce(origin))
	if err != nil {
		return nil, err
	}
	t.k.remember(origin, resp)
	if !askedForNonce(resp) {
		return resp, nil
	}
	if getBody != nil {
		if body, err = getBody(); err != nil {
			return resp, nil // the caller gets the challenge
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxChallengeBody))
	resp.Body.Close()
	resp, err = t.send(req, body, getBody, t.k.nonce(origin))
	if err == nil {
		t.k.remember(origin, resp)
	}
	return resp, err
}

// send sends a clone of req with body and a proof carrying nonce.
func (t *dpopTransport) send(req *http.Request, body io.ReadCloser, getBody func() (io.ReadCloser, error), nonce string) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body, r.GetBody = body, getBody
	var token string
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok &&
		(strings.EqualFold(scheme, schemeBearer) || strings.EqualFold(scheme, schemeDPoP)) {
		if token = strings.TrimSpace(tok); token != "" {
			r.Header.Set("Authorization", schemeDPoP+" "+token)
		}
	}
	r.Header.Set("DPoP", t.k.Proof(r.Method, proofURL(r.URL), token, nonce))
	return t.base.RoundTrip(r)
}

// proofURL is u as a proof's htu: without query, fragment or user info,
// none of which go to the server as part of the target.
func proofURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// originOf is u's origin, scheme://host:port, the scope of a server's
// nonce.
func originOf(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

func (k *DPoPKey) nonce(origin string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.nonces[origin]
}

func (k *DPoPKey) remember(origin string, resp *http.Response) {
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		k.mu.Lock()
		k.nonces[origin] = n
		k.mu.Unlock()
	}
}

// askedForNonce reports whether resp refuses a proof for want of a nonce
// and brings one: a 401 whose DPoP challenge has error="use_dpop_nonce"
// (RFC 9449 §9), or a 400 whose JSON error is use_dpop_nonce (§8). What it
// reads of a 400's body is put back in front of the rest.
func askedForNonce(resp *http.Response) bool {
	if resp.Header.Get("DPoP-Nonce") == "" {
		return false
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return dpopChallengeError(resp.Header.Values("WWW-Authenticate")) == "use_dpop_nonce"
	case http.StatusBadRequest:
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxChallengeBody))
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		var e struct {
			Error string `json:"error"`
		}
		return err == nil && json.Unmarshal(b, &e) == nil && e.Error == "use_dpop_nonce"
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// dpopChallengeError returns the error parameter of the DPoP challenge in
// WWW-Authenticate values, or "". A value may hold several challenges,
// separated by commas like their parameters (RFC 9110 §11.6.1): a name
// followed by "=" is a parameter of the challenge before it, any other
// name starts a challenge.
func dpopChallengeError(values []string) string {
	for _, v := range values {
		inDPoP := false
		l := authLexer{s: v}
		for name, value, param, ok := l.next(); ok; name, value, param, ok = l.next() {
			if !param {
				inDPoP = strings.EqualFold(name, schemeDPoP)
			} else if inDPoP && strings.EqualFold(name, "error") {
				return value
			}
		}
	}
	return ""
}

// authLexer reads a WWW-Authenticate value as a sequence of scheme names
// and name=value parameters. It skips what it cannot read (a token68, say)
// rather than fail.
type authLexer struct {
	s string
	i int
}

// next returns the next scheme name (param false) or parameter; ok is
// false at the end.
func (l *authLexer) next() (name, value string, param, ok bool) {
	for {
		l.skip(" \t,")
		if l.i >= len(l.s) {
			return "", "", false, false
		}
		if name = l.token(); name != "" {
			break
		}
		l.i++ // a character no challenge starts with
	}
	l.skip(" \t")
	if l.i >= len(l.s) || l.s[l.i] != '=' {
		return name, "", false, true
	}
	l.i++
	l.skip(" \t")
	if l.i < len(l.s) && l.s[l.i] == '"' {
		return name, l.quoted(), true, true
	}
	return name, l.token(), true, true
}

func (l *authLexer) skip(set string) {
	for l.i < len(l.s) && strings.IndexByte(set, l.s[l.i]) >= 0 {
		l.i++
	}
}

// token reads an RFC 9110 token.
func (l *authLexer) token() string {
	start := l.i
	for l.i < len(l.s) && (isAlnum(l.s[l.i]) || strings.IndexByte("!#$%&'*+-.^_`|~", l.s[l.i]) >= 0) {
		l.i++
	}
	return l.s[start:l.i]
}

// quoted reads a quoted-string, the opening quote first.
func (l *authLexer) quoted() string {
	var b strings.Builder
	for l.i++; l.i < len(l.s); l.i++ {
		switch c := l.s[l.i]; {
		case c == '"':
			l.i++
			return b.String()
		case c == '\\' && l.i+1 < len(l.s):
			l.i++
			b.WriteByte(l.s[l.i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// dpopJKT reads the dpop_jkt of an authorization request: "" when absent,
// or an error when it is not a SHA-256 thumbprint.
func dpopJKT(q url.Values) (string, *oauthError) {
	v := q.Get("dpop_jkt")
	if v == "" {
		return "", nil
	}
	if len(v) != 43 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", errorf("invalid_request", "dpop_jkt is not a base64url SHA-256 thumbprint")
	}
	return v, nil
}
