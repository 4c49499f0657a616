package descopetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-go-contrib/descope/auth/dpop"
)

// Exact answers of the token endpoint to DPoP requests.
const (
	descUseNonce   = "Authorization server requires nonce in DPoP proof"
	descOtherKey   = "the refresh token is bound to another DPoP key"
	descNotDPoPJKT = "the DPoP proof's key is not the dpop_jkt of the authorization request"
)

// dpopPost posts form to the token endpoint, authenticated as c, with the
// DPoP headers given.
func (c *testClient) dpopPost(t *testing.T, form url.Values, proofs ...string) (int, http.Header, map[string]any) {
	t.Helper()
	switch c.authMethod {
	case "client_secret_post":
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
	case "client_secret_basic":
	default:
		form.Set("client_id", c.id)
	}
	req, err := http.NewRequest(http.MethodPost, c.token, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.authMethod == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	status, header, body := do(t, req)
	return status, header, decodeObject(t, body)
}

// nonceFor asks the token endpoint for a nonce the way Descope hands it
// out: a first DPoP request without one is refused with use_dpop_nonce.
func (c *testClient) nonceFor(t *testing.T, k *DPoPKey) string {
	t.Helper()
	status, header, resp := c.dpopPost(t, url.Values{"grant_type": {"authorization_code"}, "code": {"none"}}, k.Proof(http.MethodPost, c.token, "", ""))
	wantOAuthError(t, status, resp, "use_dpop_nonce", descUseNonce)
	if header.Get("DPoP-Nonce") == "" {
		t.Fatalf("use_dpop_nonce without a DPoP-Nonce header: %v", header)
	}
	return header.Get("DPoP-Nonce")
}

// wantOAuthError fails unless an answer is the OAuth error code with
// exactly the description given, status 400.
func wantOAuthError(t *testing.T, status int, resp map[string]any, code, description string) {
	t.Helper()
	if status != http.StatusBadRequest || resp["error"] != code || resp["error_description"] != description || len(resp) != 2 {
		t.Fatalf("got %d %v, want 400 error %q, error_description %q", status, resp, code, description)
	}
}

// wantBound fails unless a token answer is a DPoP token bound to k.
func wantBound(t *testing.T, s *Server, status int, resp map[string]any, k *DPoPKey) {
	t.Helper()
	if status != http.StatusOK || resp["token_type"] != "DPoP" {
		t.Fatalf("got %d %v, want 200 token_type DPoP", status, resp)
	}
	_, claims := parse(t, s, resp["access_token"].(string))
	if cnf, _ := claims["cnf"].(map[string]any); len(cnf) != 1 || cnf["jkt"] != k.Thumbprint() {
		t.Fatalf("cnf = %v, want {jkt: %s}", claims["cnf"], k.Thumbprint())
	}
}

func codeForm(c *testClient, code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirectURI}, "code_verifier": {verifier}}
}

// proofWith makes a proof by k with claims a DPoPKey would not choose.
func proofWith(t *testing.T, k *DPoPKey, c dpop.ProofClaims) string {
	t.Helper()
	p, err := dpop.NewProof(k.key, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokenEndpointDPoP: at both issuers' token endpoints, a first
// request with a proof is asked for a nonce (without spending the code),
// the retry gets a token bound to the proof's key, and proofs that do not
// fit the request are refused, each with its exact answer; after all the
// refusals the refresh token still works for its key, and only for it.
func TestTokenEndpointDPoP(t *testing.T) {
	s := newServer(t)
	for _, projectLevel := range []bool{false, true} {
		t.Run(fmt.Sprintf("project-level=%t", projectLevel), func(t *testing.T) {
			issuer, other := s.AgenticIssuer(), s.ProjectIssuer()
			if projectLevel {
				issuer, other = other, issuer
			}
			c := register(t, issuer+"/.well-known/openid-configuration", "", "")
			_, doc := getJSON(t, other+"/.well-known/openid-configuration")
			otherToken := doc["token_endpoint"].(string)
			k := NewDPoPKey()

			verifier, challenge := pkce()
			code := c.getCode(t, nil, challenge)
			status, header, resp := c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", ""))
			wantOAuthError(t, status, resp, "use_dpop_nonce", descUseNonce)
			nonce := header.Get("DPoP-Nonce")
			if nonce == "" || header.Get("Cache-Control") != "no-store" {
				t.Fatalf("use_dpop_nonce answer headers: %v", header)
			}

			proof := k.Proof(http.MethodPost, c.token, "", nonce)
			status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), proof)
			wantBound(t, s, status, resp, k)
			refreshToken := resp["refresh_token"].(string)

			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
			anHourAgo := time.Now().Add(-time.Hour)
			refused := []struct {
				name        string
				proofs      []string
				code        string
				description string
			}{
				{"replayed proof", []string{proof}, "invalid_dpop_proof", "DPoP proof refused: replay"},
				{"two DPoP headers", []string{k.Proof(http.MethodPost, c.token, "", nonce), k.Proof(http.MethodPost, c.token, "", nonce)}, "invalid_dpop_proof", "more than one DPoP header"},
				{"proof for GET", []string{k.Proof(http.MethodGet, c.token, "", nonce)}, "invalid_dpop_proof", "DPoP proof refused: htm"},
				{"proof for the authorization endpoint", []string{k.Proof(http.MethodPost, c.authorize, "", nonce)}, "invalid_dpop_proof", "DPoP proof refused: htu"},
				{"proof for the other issuer's token endpoint", []string{k.Proof(http.MethodPost, otherToken, "", nonce)}, "invalid_dpop_proof", "DPoP proof refused: htu"},
				{"proof made an hour ago", []string{proofWith(t, k, dpop.ProofClaims{Method: http.MethodPost, URL: c.token, Nonce: nonce, IssuedAt: anHourAgo})}, "invalid_dpop_proof", "DPoP proof refused: iat"},
				{"not a proof", []string{"e30.e30.e30"}, "invalid_dpop_proof", "DPoP proof refused: typ"},
				{"empty DPoP header", []string{""}, "invalid_dpop_proof", "DPoP proof refused: malformed"},
				{"no nonce", []string{k.Proof(http.MethodPost, c.token, "", "")}, "use_dpop_nonce", descUseNonce},
				{"made-up nonce", []string{k.Proof(http.MethodPost, c.token, "", "made-up")}, "use_dpop_nonce", descUseNonce},
				{"refresh by another key", []string{NewDPoPKey().Proof(http.MethodPost, c.token, "", nonce)}, "invalid_grant", descOtherKey},
				{"refresh without DPoP", nil, "invalid_grant", descOtherKey},
			}
			for _, tt := range refused {
				t.Run(tt.name, func(t *testing.T) {
					status, header, resp := c.dpopPost(t, cloneForm(refresh), tt.proofs...)
					wantOAuthError(t, status, resp, tt.code, tt.description)
					if fresh := header.Get("DPoP-Nonce"); (fresh != "") != (tt.code == "use_dpop_nonce") || fresh == nonce {
						t.Fatalf("DPoP-Nonce %q after a %s refusal (the last one was %q)", fresh, tt.code, nonce)
					}
				})
			}

			// After all that, the refresh token works for its key, and
			// the new token and refresh token are bound again.
			status, _, resp = c.dpopPost(t, cloneForm(refresh), k.Proof(http.MethodPost, c.token, "", nonce))
			wantBound(t, s, status, resp, k)
			refresh.Set("refresh_token", resp["refresh_token"].(string))
			status, _, resp = c.dpopPost(t, cloneForm(refresh), NewDPoPKey().Proof(http.MethodPost, c.token, "", nonce))
			wantOAuthError(t, status, resp, "invalid_grant", descOtherKey)
		})
	}
}

// TestTokenEndpointDPoPCustomDomain: with a custom domain, the token
// endpoint the metadata names is on it, and a proof must name that URL,
// not the same endpoint on the server's own address.
func TestTokenEndpointDPoPCustomDomain(t *testing.T) {
	s := newServer(t, WithCustomDomain())
	c := register(t, s.WellKnownURL(), "", "")
	if !strings.HasPrefix(c.token, s.CustomDomainURL()+"/") {
		t.Fatalf("token endpoint %s is not on the custom domain %s", c.token, s.CustomDomainURL())
	}
	k := NewDPoPKey()
	nonce := c.nonceFor(t, k)
	verifier, challenge := pkce()
	code := c.getCode(t, nil, challenge)
	ownAddress := s.URL() + strings.TrimPrefix(c.token, s.CustomDomainURL())
	status, _, resp := c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, ownAddress, "", nonce))
	wantOAuthError(t, status, resp, "invalid_dpop_proof", "DPoP proof refused: htu")
	status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	wantBound(t, s, status, resp, k)
}

// cloneForm returns a copy of v, since dpopPost adds to the form it is given.
func cloneForm(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

// TestAuthorizeDPoPJKT: a code requested with dpop_jkt is redeemed only
// with a proof by that key, and one attempt with another key, or none,
// spends it.
func TestAuthorizeDPoPJKT(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	k, other := NewDPoPKey(), NewDPoPKey()
	nonce := c.nonceFor(t, k)
	bound := map[string]string{"dpop_jkt": k.Thumbprint()}

	tests := []struct {
		name   string
		proofs func() []string
	}{
		{"proof by another key", func() []string { return []string{other.Proof(http.MethodPost, c.token, "", nonce)} }},
		{"no proof", func() []string { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkce()
			code := c.getCode(t, bound, challenge)
			status, _, resp := c.dpopPost(t, codeForm(c, code, verifier), tt.proofs()...)
			wantOAuthError(t, status, resp, "invalid_grant", descNotDPoPJKT)
			status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", nonce))
			wantOAuthError(t, status, resp, "invalid_grant", "unknown or already used authorization code")
		})
	}

	verifier, challenge := pkce()
	code := c.getCode(t, bound, challenge)
	status, _, resp := c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	wantBound(t, s, status, resp, k)

	for _, jkt := range []string{"short", k.Thumbprint()[:42] + "=", k.Thumbprint() + "A"} {
		status, header, _ := get(t, c.authorizeURL(map[string]string{"dpop_jkt": jkt}, challenge))
		loc, _ := url.Parse(header.Get("Location"))
		q := loc.Query()
		if status != http.StatusFound || q.Get("error") != "invalid_request" || q.Get("error_description") != "dpop_jkt is not a base64url SHA-256 thumbprint" {
			t.Errorf("dpop_jkt %q: %d %s", jkt, status, header.Get("Location"))
		}
	}
}

// TestDPoPConfidentialClient: a confidential client's refresh token is
// bound to its credentials, not to a key (RFC 9449 §5), so each refresh
// binds the new access token to whichever key proves it, or to none.
func TestDPoPConfidentialClient(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "client_secret_basic", "")
	k, next := NewDPoPKey(), NewDPoPKey()
	nonce := c.nonceFor(t, k)
	verifier, challenge := pkce()
	status, _, resp := c.dpopPost(t, codeForm(c, c.getCode(t, nil, challenge), verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	wantBound(t, s, status, resp, k)

	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp["refresh_token"].(string)}}
	status, _, resp = c.dpopPost(t, cloneForm(refresh), next.Proof(http.MethodPost, c.token, "", nonce))
	wantBound(t, s, status, resp, next)
	refresh.Set("refresh_token", resp["refresh_token"].(string))
	status, _, resp = c.dpopPost(t, cloneForm(refresh))
	if status != http.StatusOK || resp["token_type"] != "Bearer" {
		t.Fatalf("refresh without a proof: %d %v", status, resp)
	}
}

// TestTokenEndpointWithoutDPoPIsUnchanged: without a DPoP header the token
// endpoint issues bearer tokens as before, and hands out no nonce; both
// metadata documents list the proof algorithms.
func TestTokenEndpointWithoutDPoPIsUnchanged(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	verifier, challenge := pkce()
	status, header, resp := c.tokenRequest(t, c.token, codeForm(c, c.getCode(t, nil, challenge), verifier))
	if status != http.StatusOK || resp["token_type"] != "Bearer" || header.Get("DPoP-Nonce") != "" {
		t.Fatalf("%d %v %v", status, resp, header)
	}
	if _, claims := parse(t, s, resp["access_token"].(string)); claims["cnf"] != nil {
		t.Fatalf("a bearer token carries cnf %v", claims["cnf"])
	}
	status, resp = c.refresh(t, resp["refresh_token"].(string), nil)
	if status != http.StatusOK || resp["token_type"] != "Bearer" {
		t.Fatalf("refresh: %d %v", status, resp)
	}
	want := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	for _, issuer := range []string{s.AgenticIssuer(), s.ProjectIssuer()} {
		for _, doc := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			_, md := getJSON(t, issuer+doc)
			if got := strs(t, md["dpop_signing_alg_values_supported"]); !slices.Equal(got, want) {
				t.Errorf("%s%s: dpop_signing_alg_values_supported = %v", issuer, doc, got)
			}
		}
	}
}

// TestExpireDPoPNonces: once the nonces are expired, the nonce a client
// holds is refused with use_dpop_nonce and a new one; the transport gets
// over it with one retry.
func TestExpireDPoPNonces(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	k := NewDPoPKey()
	nonce := c.nonceFor(t, k)
	verifier, challenge := pkce()
	code := c.getCode(t, nil, challenge)
	s.ExpireDPoPNonces()
	status, header, resp := c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	wantOAuthError(t, status, resp, "use_dpop_nonce", descUseNonce)
	fresh := header.Get("DPoP-Nonce")
	if fresh == "" || fresh == nonce {
		t.Fatalf("DPoP-Nonce %q, want a new one", fresh)
	}
	status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", fresh))
	wantBound(t, s, status, resp, k)

	// Through the transport: its first refresh learns a nonce, and after
	// the expiry the next one is asked once more.
	wire := &wireRecorder{next: http.DefaultTransport}
	hc := &http.Client{Transport: k.Transport(wire)}
	refreshToken := resp["refresh_token"].(string)
	for range 2 {
		tok := postThrough(t, hc, c.token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {c.id}})
		if tok.TokenType != "DPoP" {
			t.Fatalf("token_type %q", tok.TokenType)
		}
		refreshToken = tok.RefreshToken
		s.ExpireDPoPNonces()
	}
	first, second := wire.responseNonce(0), wire.responseNonce(2)
	want := []string{"POST 400 nonce ", "POST 200 nonce " + first, "POST 400 nonce " + first, "POST 200 nonce " + second}
	if got := wire.lines(); first == "" || second == "" || first == second || !slices.Equal(got, want) {
		t.Fatalf("wire = %q, want %q", got, want)
	}
}

// TestDPoPWithClock: a test clock far from the real time does not make
// proofs fail, which clients sign by the real time; nonces expire by the
// test clock.
func TestDPoPWithClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newServer(t, WithClock(clock))
	c := register(t, s.WellKnownURL(), "", "")
	k := NewDPoPKey()
	nonce := c.nonceFor(t, k)
	verifier, challenge := pkce()
	status, _, resp := c.dpopPost(t, codeForm(c, c.getCode(t, nil, challenge), verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	if status != http.StatusOK || resp["token_type"] != "DPoP" {
		t.Fatalf("%d %v", status, resp)
	}

	mu.Lock()
	now = now.Add(nonceLifetime)
	mu.Unlock()
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp["refresh_token"].(string)}}
	status, _, resp = c.dpopPost(t, refresh, k.Proof(http.MethodPost, c.token, "", nonce))
	wantOAuthError(t, status, resp, "use_dpop_nonce", descUseNonce)
}

func TestMintBound(t *testing.T) {
	s := newServer(t)
	k := NewDPoPKey()
	_, claims := parse(t, s, s.MintBound(map[string]any{"scope": "notes:read"}, k))
	if cnf, _ := claims["cnf"].(map[string]any); len(cnf) != 1 || cnf["jkt"] != k.Thumbprint() || claims["scope"] != "notes:read" {
		t.Fatalf("claims = %v", claims)
	}
	if _, claims := parse(t, s, s.MintBound(map[string]any{"cnf": nil}, k)); claims["cnf"] != nil {
		t.Fatalf("cnf: nil left %v", claims["cnf"])
	}
}

// TestUserInfoDPoP: userinfo takes a bound token only in the DPoP scheme
// with a proof by its key for it, and an unbound one only as a bearer
// token, with one challenge per scheme and the error on the one used.
func TestUserInfoDPoP(t *testing.T) {
	s := newServer(t)
	_, doc := getJSON(t, s.WellKnownURL())
	endpoint := doc["userinfo_endpoint"].(string)
	k := NewDPoPKey()
	bound, unbound := s.MintBound(nil, k), s.Mint(nil)
	proof := func(token string) string { return k.Proof(http.MethodGet, endpoint, token, "") }
	const (
		bearerPlain = `Bearer realm="descopetest"`
		dpopPlain   = `DPoP realm="descopetest", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"`
	)
	replayed := proof(bound)
	tests := []struct {
		name      string
		auth      string
		proofs    []string
		challenge []string // nil: 200
	}{
		{"bound token with its proof", "DPoP " + bound, []string{replayed}, nil},
		{"scheme is case-insensitive", "dpop " + bound, []string{proof(bound)}, nil},
		{"unbound bearer token", "Bearer " + unbound, nil, nil},
		{"replayed proof", "DPoP " + bound, []string{replayed}, []string{bearerPlain, dpopPlain + `, error="invalid_dpop_proof"`}},
		{"bound token as a bearer token", "Bearer " + bound, []string{proof(bound)}, []string{bearerPlain + `, error="invalid_token"`, dpopPlain}},
		{"unbound token in the DPoP scheme", "DPoP " + unbound, []string{proof(unbound)}, []string{bearerPlain, dpopPlain + `, error="invalid_token"`}},
		{"no proof", "DPoP " + bound, nil, []string{bearerPlain, dpopPlain + `, error="invalid_dpop_proof"`}},
		{"two proofs", "DPoP " + bound, []string{proof(bound), proof(bound)}, []string{bearerPlain, dpopPlain + `, error="invalid_dpop_proof"`}},
		{"proof for another token", "DPoP " + bound, []string{proof(unbound)}, []string{bearerPlain, dpopPlain + `, error="invalid_dpop_proof"`}},
		{"proof by another key", "DPoP " + bound, []string{NewDPoPKey().Proof(http.MethodGet, endpoint, bound, "")}, []string{bearerPlain, dpopPlain + `, error="invalid_token"`}},
		{"proof for POST", "DPoP " + bound, []string{k.Proof(http.MethodPost, endpoint, bound, "")}, []string{bearerPlain, dpopPlain + `, error="invalid_dpop_proof"`}},
		{"expired bound token", "DPoP " + s.MintBound(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}, k), []string{proof(bound)}, []string{bearerPlain, dpopPlain + `, error="invalid_token"`}},
		{"no token", "", nil, []string{bearerPlain, dpopPlain}},
		{"basic", "Basic dXNlcjpwYXNz", nil, []string{bearerPlain, dpopPlain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			for _, p := range tt.proofs {
				req.Header.Add("DPoP", p)
			}
			status, header, body := do(t, req)
			if tt.challenge == nil {
				if info := decodeObject(t, body); status != http.StatusOK || info["sub"] != DefaultUserID {
					t.Fatalf("%d %s", status, body)
				}
				return
			}
			if got := header.Values("WWW-Authenticate"); status != http.StatusUnauthorized || !slices.Equal(got, tt.challenge) {
				t.Fatalf("%d, WWW-Authenticate %q, want 401 %q", status, got, tt.challenge)
			}
		})
	}

	// Through the transport, a client that sends the bound token as a
	// bearer token is let in.
	req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
	req.Header.Set("Authorization", "Bearer "+bound)
	resp, err := (&http.Client{Transport: k.Transport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo through the transport: %d", resp.StatusCode)
	}
}

// wireRecorder records, for each exchange under the transport, the
// method, status and the nonce in the proof.
type wireRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	seen   []string
	nonces []string // of the responses' DPoP-Nonce
}

func (w *wireRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	var claims struct {
		Nonce string `json:"nonce"`
	}
	if parts := strings.Split(r.Header.Get("DPoP"), "."); len(parts) == 3 {
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(b, &claims)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, fmt.Sprintf("%s %d nonce %s", r.Method, resp.StatusCode, claims.Nonce))
	w.nonces = append(w.nonces, resp.Header.Get("DPoP-Nonce"))
	return resp, nil
}

func (w *wireRecorder) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

// responseNonce is the DPoP-Nonce of the i-th response (from 0), or "".
func (w *wireRecorder) responseNonce(i int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i >= len(w.nonces) {
		return ""
	}
	return w.nonces[i]
}

// postThrough posts form to u through hc and decodes the token answer.
func postThrough(t *testing.T, hc *http.Client, u string, form url.Values) tokenResponse {
	t.Helper()
	resp, err := hc.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s through the transport: %d %+v %v", u, resp.StatusCode, tok, err)
	}
	return tok
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dpopResource is a resource server that demands the DPoP scheme, a
// token bound to key and a proof with its nonce: the first request is
// refused with use_dpop_nonce. It echoes the body of requests it lets in.
type dpopResource struct {
	*httptest.Server
	attempts atomic.Int32
}

func newDPoPResource(t *testing.T, key *DPoPKey, token string) *dpopResource {
	t.Helper()
	const nonce = "resource-nonce-1"
	v, err := dpop.NewVerifier(dpop.Options{Nonce: func(_ context.Context, n string) bool { return n == nonce }})
	if err != nil {
		t.Fatal(err)
	}
	rs := &dpopResource{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.attempts.Add(1)
		body, _ := io.ReadAll(r.Body)
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		proofs := r.Header.Values("DPoP")
		if scheme != "DPoP" || tok != token || len(proofs) != 1 {
			http.Error(w, "want the DPoP scheme, the token and one proof", http.StatusBadRequest)
			return
		}
		_, err := v.Verify(r.Context(), proofs[0], dpop.Request{Method: r.Method, URL: rs.URL + r.URL.Path, AccessToken: tok, KeyThumbprint: key.Thumbprint()})
		if errors.Is(err, dpop.ErrUseNonce) {
			w.Header().Set("DPoP-Nonce", nonce)
			w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(rs.Close)
	return rs
}

// onlyReader hides everything of a reader but Read, so that
// http.NewRequest sets no GetBody for it.
type onlyReader struct{ io.Reader }

// TestDPoPTransport: an OAuth client that knows nothing of DPoP, through
// the transport, registers, signs in and gets a bound token from the fake
// (the nonce retry included), refreshes it, and uses it at a resource that
// demands the DPoP scheme and its own nonce, whichever scheme the client
// put in the header; the retried request carries its body again, whether
// or not the request can make it again itself, and the caller's request
// is left as it was.
func TestDPoPTransport(t *testing.T) {
	s := newServer(t)
	k := NewDPoPKey()
	wire := &wireRecorder{next: http.DefaultTransport}
	hc := &http.Client{
		Transport:     k.Transport(wire),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	call := func(method, u, contentType, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	var md metadata
	if resp, body := call(http.MethodGet, s.WellKnownURL(), "", ""); resp.StatusCode != http.StatusOK || json.Unmarshal(body, &md) != nil {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}
	const redirectURI = "http://127.0.0.1:9999/callback"
	var reg registration
	if resp, body := call(http.MethodPost, md.RegistrationEndpoint, "application/json", `{"redirect_uris":["`+redirectURI+`"]}`); resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &reg) != nil {
		t.Fatalf("registration: %d %s", resp.StatusCode, body)
	}
	verifier, challenge := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirectURI}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	resp, body := call(http.MethodGet, md.AuthorizationEndpoint+"?"+q.Encode(), "", "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorization: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}, "client_id": {reg.ClientID}}
	var tok tokenResponse
	if resp, body := call(http.MethodPost, md.TokenEndpoint, "application/x-www-form-urlencoded", form.Encode()); resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.TokenType != "DPoP" {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {reg.ClientID}}
	if resp, body := call(http.MethodPost, md.TokenEndpoint, "application/x-www-form-urlencoded", form.Encode()); resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.TokenType != "DPoP" {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	_, claims := parse(t, s, tok.AccessToken)
	if claims["cnf"].(map[string]any)["jkt"] != k.Thumbprint() {
		t.Fatalf("cnf = %v", claims["cnf"])
	}
	tokenNonce := wire.responseNonce(3)
	wantWire := []string{
		"GET 200 nonce ",               // discovery
		"POST 201 nonce ",              // registration
		"GET 302 nonce ",               // authorization
		"POST 400 nonce ",              // token: use_dpop_nonce
		"POST 200 nonce " + tokenNonce, // the retry
		"POST 200 nonce " + tokenNonce, // refresh: the nonce is remembered
	}
	if got := wire.lines(); tokenNonce == "" || !slices.Equal(got, wantWire) {
		t.Fatalf("wire:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantWire, "\n"))
	}

	// Each resource asks for its nonce on the first request; the second
	// goes through at once.
	tests := []struct {
		name, scheme string
		body         func(string) io.Reader
	}{
		{"bearer, replayable body", "Bearer", func(s string) io.Reader { return strings.NewReader(s) }},
		{"DPoP, replayable body", "DPoP", func(s string) io.Reader { return strings.NewReader(s) }},
		{"bearer, body read once", "Bearer", func(s string) io.Reader { return onlyReader{strings.NewReader(s)} }},
		{"DPoP, body read once", "DPoP", func(s string) io.Reader { return onlyReader{strings.NewReader(s)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newDPoPResource(t, k, tok.AccessToken)
			for i, attempts := range []int32{2, 1} {
				rs.attempts.Store(0)
				want := `{"jsonrpc":"2.0","id":` + fmt.Sprint(i) + `,"method":"ping"}`
				req, _ := http.NewRequest(http.MethodPost, rs.URL+"/mcp?x=1#frag", tt.body(want))
				req.Header.Set("Authorization", tt.scheme+" "+tok.AccessToken)
				before := req.Header.Clone()
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(got) != want {
					t.Fatalf("request %d: %d %s, want 200 %s", i, resp.StatusCode, got, want)
				}
				if n := rs.attempts.Load(); n != attempts {
					t.Fatalf("request %d: %d attempts, want %d", i, n, attempts)
				}
				if !equalHeaders(req.Header, before) {
					t.Fatalf("the caller's request was changed: %v, was %v", req.Header, before)
				}
			}
		})
	}

	// Many requests at once, for the race detector.
	rs := newDPoPResource(t, k, tok.AccessToken)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, rs.URL+"/mcp", strings.NewReader(fmt.Sprint(i)))
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(got) != fmt.Sprint(i) {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, got)
			}
		})
	}
	wg.Wait()
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestDPoPTransportChallenges: which answers the transport retries with
// the nonce they bring (exactly once), and that it hands every other
// answer over with its body intact.
func TestDPoPTransportChallenges(t *testing.T) {
	large := `{"error":"invalid_request","error_description":"` + strings.Repeat("x", 2*maxChallengeBody) + `"}`
	tests := []struct {
		name      string
		status    int
		challenge []string // WWW-Authenticate
		nonce     string   // DPoP-Nonce
		body      string
		retried   bool
	}{
		{"401 DPoP use_dpop_nonce", 401, []string{`DPoP algs="ES256", error="use_dpop_nonce"`}, "n1", "", true},
		{"401 both challenges in one value", 401, []string{`Bearer realm="r", DPoP algs="ES256 EdDSA", error="use_dpop_nonce"`}, "n1", "", true},
		{"401 error on the second of two values", 401, []string{`Bearer realm="r"`, `dpop error="use_dpop_nonce"`}, "n1", "", true},
		{"401 quoted commas before the error", 401, []string{`DPoP error_description="a, b=\"c\"", error=use_dpop_nonce`}, "n1", "", true},
		{"401 use_dpop_nonce on the Bearer challenge", 401, []string{`Bearer error="use_dpop_nonce", DPoP algs="ES256"`}, "n1", "", false},
		{"401 token68 challenge", 401, []string{`Basic dXNlcjpwYXNz==, DPoP error="invalid_token"`}, "n1", "", false},
		{"401 use_dpop_nonce without a nonce", 401, []string{`DPoP error="use_dpop_nonce"`}, "", "", false},
		{"401 invalid_dpop_proof", 401, []string{`DPoP error="invalid_dpop_proof"`}, "n1", "", false},
		{"400 use_dpop_nonce", 400, nil, "n1", `{"error":"use_dpop_nonce","error_description":"` + descUseNonce + `"}`, true},
		{"400 use_dpop_nonce without a nonce", 400, nil, "", `{"error":"use_dpop_nonce"}`, false},
		{"400 use_dpop_nonce only in the description", 400, nil, "n1", `{"error":"invalid_request","error_description":"use_dpop_nonce"}`, false},
		{"400 not JSON", 400, nil, "n1", `"use_dpop_nonce"`, false},
		{"400 larger than what is read", 400, nil, "n1", large, false},
		{"200 with a nonce", 200, nil, "n1", "ok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string // the nonce of each request's proof, and its body
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var claims struct {
					Nonce string `json:"nonce"`
				}
				parts := strings.Split(r.Header.Get("DPoP"), ".")
				b, _ := base64.RawURLEncoding.DecodeString(parts[1])
				_ = json.Unmarshal(b, &claims)
				mu.Lock()
				seen = append(seen, claims.Nonce+" "+string(body))
				mu.Unlock()
				for _, c := range tt.challenge {
					w.Header().Add("WWW-Authenticate", c)
				}
				if tt.nonce != "" {
					w.Header().Set("DPoP-Nonce", tt.nonce)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			hc := &http.Client{Transport: NewDPoPKey().Transport(nil)}
			resp, err := hc.Post(srv.URL, "text/plain", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Fatalf("caller got %d %.80s, want %d %.80s", resp.StatusCode, body, tt.status, tt.body)
			}
			want := []string{" hello"}
			if tt.retried {
				want = append(want, tt.nonce+" hello")
			}
			if !slices.Equal(seen, want) {
				t.Fatalf("requests (nonce, body) = %q, want %q", seen, want)
			}

			// Whatever the answer, a nonce it brought goes into the next
			// request to the same origin.
			if _, err := hc.Get(srv.URL); err != nil {
				t.Fatal(err)
			}
			if last := seen[len(seen)-1]; last != tt.nonce+" " {
				t.Fatalf("the next request carried nonce and body %q, want nonce %q", last, tt.nonce)
			}
		})
	}
}

// TestDPoPTransportProofs: what the proof of each request names (htm, htu
// without query, fragment or user info, ath for the token in either
// scheme) and that other Authorization schemes are left alone.
func TestDPoPTransportProofs(t *testing.T) {
	k := NewDPoPKey()
	var last *http.Request
	rec := roundTripper(func(r *http.Request) (*http.Response, error) {
		last = r
		return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	hc := &http.Client{Transport: k.Transport(rec)}
	v, err := dpop.NewVerifier(dpop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, url, auth string
		htu               string // exactly
		wantAuth          string
		token             string // ath
	}{
		{http.MethodGet, "https://user:pw@MCP.example.com:443/a/b?q=1#f", "", "https://MCP.example.com:443/a/b", "Basic dXNlcjpwdw==", ""},
		{http.MethodPut, "http://127.0.0.1:8080/mcp?", "Bearer tok1", "http://127.0.0.1:8080/mcp", "DPoP tok1", "tok1"},
		{http.MethodDelete, "http://127.0.0.1:8080/mcp", "DPoP tok2", "http://127.0.0.1:8080/mcp", "DPoP tok2", "tok2"},
		{http.MethodPost, "http://127.0.0.1:8080/mcp", "bearer  tok3 ", "http://127.0.0.1:8080/mcp", "DPoP tok3", "tok3"},
		{http.MethodPost, "http://127.0.0.1:8080/mcp", "Basic Zm9vOmJhcg==", "http://127.0.0.1:8080/mcp", "Basic Zm9vOmJhcg==", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := last.Header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization %q, want %q", got, tt.wantAuth)
			}
			p, err := v.Verify(context.Background(), last.Header.Get("DPoP"), dpop.Request{Method: tt.method, URL: tt.htu, AccessToken: tt.token, KeyThumbprint: k.Thumbprint()})
			if err != nil {
				t.Fatalf("proof for %s %s: %v", tt.method, tt.htu, err)
			}
			parts := strings.Split(last.Header.Get("DPoP"), ".")
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var claims map[string]any
			_ = json.Unmarshal(b, &claims)
			if claims["htu"] != tt.htu {
				t.Errorf("htu %v, want %s", claims["htu"], tt.htu)
			}
			if _, hasATH := claims["ath"]; hasATH != (tt.token != "") || p.Algorithm != "ES256" {
				t.Errorf("claims %v, alg %s", claims, p.Algorithm)
			}
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDPoPChallengeError(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{[]string{`DPoP error="use_dpop_nonce"`}, "use_dpop_nonce"},
		{[]string{`DPoP algs="ES256", error="invalid_token", error_description="x"`}, "invalid_token"},
		{[]string{`Bearer error="insufficient_scope", DPoP algs="ES256"`}, ""},
		{[]string{`Bearer error="a"`, `DPoP error="b"`}, "b"},
		{[]string{`Newauth realm="apps", type=1, title="Login to \"apps\"", DPoP   error = "c"`}, "c"},
		{[]string{`Basic abc==, DPoP error=d`}, "d"},
		{[]string{`DPoP`, `Bearer error="e"`}, ""},
		{[]string{`, ,DPoP error="f`}, "f"},
		{[]string{`DPoPX error="g"`}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := dpopChallengeError(tt.values); got != tt.want {
			t.Errorf("dpopChallengeError(%q) = %q, want %q", tt.values, got, tt.want)
		}
	}
}

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://MCP.example.com/x":     "https://mcp.example.com:443",
		"https://mcp.example.com:443/x": "https://mcp.example.com:443",
		"http://127.0.0.1:8080/":        "http://127.0.0.1:8080",
		"http://[::1]/":                 "http://[::1]:80",
	} {
		if got := originOf(mustParse(t, in)); got != want {
			t.Errorf("originOf(%s) = %s, want %s", in, got, want)
		}
	}
}
