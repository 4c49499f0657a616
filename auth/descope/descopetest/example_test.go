package descopetest_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// This example protects an HTTP handler with tokens of a fake Descope
// project: the handler checks bearer tokens against the fake provider's key
// set, and the test mints tokens for it. The tokens are bound to the
// handler's URL, the fake's MCP Server URL.
func Example() {
	const resource = "https://notes.example.com/notes"
	idp := descopetest.NewServer(
		descopetest.WithUser(descopetest.User{
			Subject: "U2exampleuser000000000000000",
			Roles:   []string{"editor"},
		}),
		descopetest.WithMCPServerURL(resource),
	)
	defer idp.Close()

	keys, err := fetchKeySet(idp.Client(), idp.JWKSURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	handler := requireToken(keys, idp.Issuer(), resource, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello,", r.Header.Get("X-Subject"))
	}))

	call := func(token string) {
		req := httptest.NewRequest(http.MethodGet, "/notes", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	call(idp.Mint(map[string]any{"scope": "notes:read"}))
	call(idp.Mint(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}))
	call(idp.Mint(map[string]any{"roles": nil}))

	// Output:
	// 200 hello, U2exampleuser000000000000000
	// 401 token has invalid claims: token is expired
	// 403 missing role editor
}

// requireToken lets requests through to next if they carry a valid access
// token of the given issuer and audience whose roles include "editor".
func requireToken(keys map[string]*rsa.PublicKey, issuer, audience string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var claims struct {
			jwt.RegisteredClaims
			Roles []string `json:"roles"`
		}
		_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if key, ok := keys[kid]; ok {
				return key, nil
			}
			return nil, errors.New("unknown key")
		}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer), jwt.WithAudience(audience), jwt.WithExpirationRequired())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		hasRole := false
		for _, role := range claims.Roles {
			hasRole = hasRole || role == "editor"
		}
		if !hasRole {
			http.Error(w, "missing role editor", http.StatusForbidden)
			return
		}
		r.Header.Set("X-Subject", claims.Subject)
		next.ServeHTTP(w, r)
	})
}

// fetchKeySet downloads a JSON Web Key Set and returns its RSA keys by kid.
func fetchKeySet(client *http.Client, url string) (map[string]*rsa.PublicKey, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid, Kty, N, E string
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	keys := make(map[string]*rsa.PublicKey)
	for _, k := range set.Keys {
		n, errN := base64.RawURLEncoding.DecodeString(k.N)
		e, errE := base64.RawURLEncoding.DecodeString(k.E)
		if k.Kty != "RSA" || errN != nil || errE != nil {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys, nil
}

// This example tests a server that requires DPoP: a token bound to the
// client's key, minted without the OAuth flow, works through the key's
// transport, which sends it with the DPoP scheme and a fresh proof on every
// request; the same token sent as a plain bearer token is refused.
func ExampleDPoPKey_Transport() {
	idp := descopetest.NewServer()
	defer idp.Close()
	p, err := descope.New(descope.Config{
		WellKnownURL: idp.WellKnownURL(),
		ServerURL:    "http://127.0.0.1:8080", // the public URL proofs are made for
		DPoP:         auth.DPoP{Mode: auth.DPoPRequired},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	if err := p.ReloadKeys(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.ClaimsFromContext(r.Context())
		fmt.Fprintln(w, "hello,", c.Subject)
	})
	handler := auth.Handler(p, hello)

	key := descopetest.NewDPoPKey()
	token := idp.MintBound(map[string]any{"aud": p.ProtectedResource().URL}, key)
	// A transport that answers in process, at the URL the server knows.
	local := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, r)
		return rec.Result(), nil
	})
	for _, c := range []*http.Client{{Transport: key.Transport(local)}, {Transport: local}} {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// 200 hello, U2defaultuser000000000000000
	// 401 {"error":"invalid_token","error_description":"This endpoint accepts only DPoP-bound access tokens, sent with the DPoP scheme and a DPoP proof."}
}

// This example sends one request by hand with a proof for it: the fake's
// userinfo endpoint takes a bound token only in the DPoP scheme, with a
// proof by the token's key for this method, URL and token.
func ExampleDPoPKey_Proof() {
	idp := descopetest.NewServer()
	defer idp.Close()
	resp, err := http.Get(idp.WellKnownURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	var md struct {
		UserInfo string `json:"userinfo_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	key := descopetest.NewDPoPKey()
	token := idp.MintBound(nil, key)
	for _, proof := range []string{
		key.Proof(http.MethodGet, md.UserInfo, token, ""),
		key.Proof(http.MethodPost, md.UserInfo, token, ""), // for another method
	} {
		req, _ := http.NewRequest(http.MethodGet, md.UserInfo, nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Print(resp.StatusCode)
		for _, c := range resp.Header.Values("WWW-Authenticate") {
			if strings.HasPrefix(c, "DPoP ") {
				fmt.Print(" ", c)
			}
		}
		fmt.Println()
	}
	// Output:
	// 200
	// 401 DPoP realm="descopetest", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA", error="invalid_dpop_proof"
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
