package descopetest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcp-go-contrib/descope/auth/dpop"
)

// dpopPost posts form to the token endpoint as c, with the DPoP headers
// given.
func (c *testClient) dpopPost(t *testing.T, form url.Values, proofs ...string) (int, http.Header, map[string]any) {
	t.Helper()
	form.Set("client_id", c.id)
	req, err := http.NewRequest(http.MethodPost, c.token, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
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
	if status != http.StatusBadRequest || resp["error"] != "use_dpop_nonce" || header.Get("DPoP-Nonce") == "" {
		t.Fatalf("first DPoP request: %d %v, DPoP-Nonce %q", status, resp, header.Get("DPoP-Nonce"))
	}
	return header.Get("DPoP-Nonce")
}

func codeForm(c *testClient, code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirectURI}, "code_verifier": {verifier}}
}

// TestTokenEndpointDPoP: the token endpoint binds tokens to the key of a
// DPoP proof as Descope does, asking first for a nonce, and refuses proofs
// that do not fit the request.
func TestTokenEndpointDPoP(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	k := NewDPoPKey()

	verifier, challenge := pkce()
	code := c.getCode(t, nil, challenge)
	first := k.Proof(http.MethodPost, c.token, "", "")
	status, header, resp := c.dpopPost(t, codeForm(c, code, verifier), first)
	if status != http.StatusBadRequest || resp["error"] != "use_dpop_nonce" {
		t.Fatalf("first request: %d %v", status, resp)
	}
	nonce := header.Get("DPoP-Nonce")
	if nonce == "" || header.Get("Cache-Control") != "no-store" {
		t.Fatalf("use_dpop_nonce answer headers: %v", header)
	}

	// The code was not spent by the nonce challenge.
	proof := k.Proof(http.MethodPost, c.token, "", nonce)
	status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), proof)
	if status != http.StatusOK || resp["token_type"] != "DPoP" {
		t.Fatalf("with the nonce: %d %v", status, resp)
	}
	_, claims := parse(t, s, resp["access_token"].(string))
	if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != k.Thumbprint() {
		t.Fatalf("cnf = %v, want jkt %s", claims["cnf"], k.Thumbprint())
	}
	refreshToken := resp["refresh_token"].(string)

	refreshForm := func() url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	}
	refused := []struct {
		name   string
		form   url.Values
		proofs []string
		code   string
	}{
		{"replayed proof", refreshForm(), []string{proof}, "invalid_dpop_proof"},
		{"two DPoP headers", refreshForm(), []string{k.Proof(http.MethodPost, c.token, "", nonce), k.Proof(http.MethodPost, c.token, "", nonce)}, "invalid_dpop_proof"},
		{"proof for GET", refreshForm(), []string{k.Proof(http.MethodGet, c.token, "", nonce)}, "invalid_dpop_proof"},
		{"proof for another URL", refreshForm(), []string{k.Proof(http.MethodPost, c.authorize, "", nonce)}, "invalid_dpop_proof"},
		{"not a proof", refreshForm(), []string{"e30.e30.e30"}, "invalid_dpop_proof"},
		{"stale nonce", refreshForm(), []string{k.Proof(http.MethodPost, c.token, "", "made-up")}, "use_dpop_nonce"},
		{"refresh by another key", refreshForm(), []string{NewDPoPKey().Proof(http.MethodPost, c.token, "", nonce)}, "invalid_grant"},
		{"refresh without DPoP", refreshForm(), nil, "invalid_grant"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, _, resp := c.dpopPost(t, tt.form, tt.proofs...)
			if status != http.StatusBadRequest || resp["error"] != tt.code {
				t.Fatalf("%d %v, want 400 %s", status, resp, tt.code)
			}
		})
	}

	// After all that, the refresh token still works for its key, and the
	// new token is bound again.
	status, _, resp = c.dpopPost(t, refreshForm(), k.Proof(http.MethodPost, c.token, "", nonce))
	if status != http.StatusOK || resp["token_type"] != "DPoP" {
		t.Fatalf("refresh with the right key: %d %v", status, resp)
	}
	if _, claims := parse(t, s, resp["access_token"].(string)); claims["cnf"].(map[string]any)["jkt"] != k.Thumbprint() {
		t.Fatalf("refreshed token cnf = %v", claims["cnf"])
	}
}

// TestAuthorizeDPoPJKT: a code requested with dpop_jkt is redeemed only
// with a proof by that key, and one attempt with another key spends it.
func TestAuthorizeDPoPJKT(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	k, other := NewDPoPKey(), NewDPoPKey()
	nonce := c.nonceFor(t, k)

	verifier, challenge := pkce()
	code := c.getCode(t, map[string]string{"dpop_jkt": k.Thumbprint()}, challenge)
	status, _, resp := c.dpopPost(t, codeForm(c, code, verifier), other.Proof(http.MethodPost, c.token, "", nonce))
	if status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
		t.Fatalf("another key: %d %v", status, resp)
	}
	status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	if status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
		t.Fatalf("the code must be spent by the failed attempt: %d %v", status, resp)
	}

	verifier, challenge = pkce()
	code = c.getCode(t, map[string]string{"dpop_jkt": k.Thumbprint()}, challenge)
	status, _, resp = c.dpopPost(t, codeForm(c, code, verifier))
	if status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
		t.Fatalf("no proof for a dpop_jkt code: %d %v", status, resp)
	}

	verifier, challenge = pkce()
	code = c.getCode(t, map[string]string{"dpop_jkt": k.Thumbprint()}, challenge)
	status, _, resp = c.dpopPost(t, codeForm(c, code, verifier), k.Proof(http.MethodPost, c.token, "", nonce))
	if status != http.StatusOK || resp["token_type"] != "DPoP" {
		t.Fatalf("the right key: %d %v", status, resp)
	}

	status, header, _ := get(t, c.authorizeURL(map[string]string{"dpop_jkt": "short"}, challenge))
	loc, _ := url.Parse(header.Get("Location"))
	if status != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("malformed dpop_jkt: %d %s", status, header.Get("Location"))
	}
}

func TestTokenEndpointWithoutDPoPIsUnchanged(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	verifier, challenge := pkce()
	status, resp := c.redeem(t, c.getCode(t, nil, challenge), verifier, nil)
	if status != http.StatusOK || resp["token_type"] != "Bearer" {
		t.Fatalf("%d %v", status, resp)
	}
	if _, claims := parse(t, s, resp["access_token"].(string)); claims["cnf"] != nil {
		t.Fatalf("a bearer token carries cnf %v", claims["cnf"])
	}
	_, doc := getJSON(t, s.WellKnownURL())
	if got := strs(t, doc["dpop_signing_alg_values_supported"]); !slices.Equal(got, dpopAlgorithms) {
		t.Fatalf("dpop_signing_alg_values_supported = %v", got)
	}
}

func TestMintBound(t *testing.T) {
	s := newServer(t)
	k := NewDPoPKey()
	_, claims := parse(t, s, s.MintBound(map[string]any{"scope": "notes:read"}, k))
	if claims["cnf"].(map[string]any)["jkt"] != k.Thumbprint() || claims["scope"] != "notes:read" {
		t.Fatalf("claims = %v", claims)
	}
}

// TestDPoPTransport: an OAuth client that knows nothing of DPoP, through
// the transport, gets a bound token from the fake (nonce retry included)
// and uses it at a resource that demands the DPoP scheme and its own
// nonce; the retried request carries its body again.
func TestDPoPTransport(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	k := NewDPoPKey()
	hc := &http.Client{Transport: k.Transport(nil)}

	verifier, challenge := pkce()
	form := codeForm(c, c.getCode(t, nil, challenge), verifier)
	form.Set("client_id", c.id)
	resp, err := hc.PostForm(c.token, form)
	if err != nil {
		t.Fatal(err)
	}
	var tok tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.TokenType != "DPoP" {
		t.Fatalf("token through the transport: %d %+v %v", resp.StatusCode, tok, err)
	}
	resp.Body.Close()

	var attempts atomic.Int32
	const rsNonce = "resource-nonce-1"
	v, err := dpop.NewVerifier(dpop.Options{Nonce: func(_ context.Context, n string) bool { return n == rsNonce }})
	if err != nil {
		t.Fatal(err)
	}
	var rsURL string
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		body, _ := io.ReadAll(r.Body)
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		proofs := r.Header.Values("DPoP")
		if scheme != "DPoP" || token != tok.AccessToken || len(proofs) != 1 {
			http.Error(w, "want the DPoP scheme and one proof", http.StatusBadRequest)
			return
		}
		_, err := v.Verify(r.Context(), proofs[0], dpop.Request{Method: r.Method, URL: rsURL + r.URL.Path, AccessToken: token, KeyThumbprint: k.Thumbprint()})
		if errors.Is(err, dpop.ErrUseNonce) {
			w.Header().Set("DPoP-Nonce", rsNonce)
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
	defer rs.Close()
	rsURL = rs.URL
	for _, scheme := range []string{"Bearer", "DPoP"} {
		attempts.Store(0)
		req, _ := http.NewRequest(http.MethodPost, rs.URL+"/mcp?x=1", strings.NewReader(`{"hello":"`+scheme+`"}`))
		req.Header.Set("Authorization", scheme+" "+tok.AccessToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != `{"hello":"`+scheme+`"}` {
			t.Fatalf("%s: %d %s", scheme, resp.StatusCode, body)
		}
		want := int32(1)
		if scheme == "Bearer" {
			want = 2 // the first request learns the resource's nonce
		}
		if attempts.Load() != want {
			t.Fatalf("%s: %d attempts, want %d", scheme, attempts.Load(), want)
		}
		if req.Header.Get("Authorization") != scheme+" "+tok.AccessToken || req.Header.Get("DPoP") != "" {
			t.Fatalf("the caller's request was changed: %v", req.Header)
		}
	}
}
