package descopetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// newServer starts a Server that is closed when the test ends.
func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// noRedirect is an HTTP client that does not follow redirects, so that the
// authorization endpoint's Location can be read.
var noRedirect = &http.Client{
	Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// do sends req and returns the status, headers and body of the answer.
func do(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", req.URL, err)
	}
	return resp.StatusCode, resp.Header, body
}

// get fetches u.
func get(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// getJSON fetches u and decodes a JSON object answer.
func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	status, _, body := get(t, u)
	return status, decodeObject(t, body)
}

// decodeObject decodes a JSON object.
func decodeObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", body, err)
	}
	return m
}

// postForm posts form to u, with basic credentials if user is not empty.
func postForm(t *testing.T, u string, form url.Values, user, password string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(password))
	}
	status, header, body := do(t, req)
	if len(body) == 0 {
		return status, header, nil
	}
	return status, header, decodeObject(t, body)
}

// postJSON posts body (a string or a value to encode) to u.
func postJSON(t *testing.T, u string, body any) (int, map[string]any) {
	t.Helper()
	raw, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	status, _, respBody := do(t, req)
	return status, decodeObject(t, respBody)
}

// strs converts a decoded JSON array to strings.
func strs(t *testing.T, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON array", v, v)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("%v is not a string", x)
		}
		out[i] = s
	}
	return out
}

// fetchKeys fetches the key set at u and returns its RSA keys by kid,
// checking every key's fields.
func fetchKeys(t *testing.T, u string) map[string]*rsa.PublicKey {
	t.Helper()
	status, header, body := get(t, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %q", u, status, body)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("key set %q: %v", body, err)
	}
	keys := make(map[string]*rsa.PublicKey)
	for _, k := range set.Keys {
		if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || k["kid"] == "" {
			t.Errorf("key %v: want kty RSA, use sig, alg RS256 and a kid", k)
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k["n"])
		e, err2 := base64.RawURLEncoding.DecodeString(k["e"])
		if err1 != nil || err2 != nil {
			t.Fatalf("key %s: n or e is not unpadded base64url", k["kid"])
		}
		keys[k["kid"]] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys
}

// parse verifies token with the keys of the server's key set, as fetched
// over HTTP, and returns its header and claims.
func parse(t *testing.T, s *Server, token string, opts ...jwt.ParserOption) (map[string]any, jwt.MapClaims) {
	t.Helper()
	keys := fetchKeys(t, s.JWKSURL())
	claims := jwt.MapClaims{}
	opts = append(opts, jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	tok, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("kid %q is not in the key set", kid)
	}, opts...)
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	return tok.Header, claims
}

// unverified decodes token without checking its signature.
func unverified(t *testing.T, token string) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if err != nil {
		t.Fatalf("decode token: %v", err)
	}
	return tok.Header, claims
}

func TestAccessors(t *testing.T) {
	s := newServer(t)
	if strings.HasSuffix(s.URL(), "/") || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want http://127.0.0.1:port without trailing slash", s.URL())
	}
	want := map[string]string{
		"ProjectID":       DefaultProjectID,
		"MCPServerID":     DefaultMCPServerID,
		"Issuer":          s.URL() + "/v1/apps/agentic/" + DefaultProjectID + "/" + DefaultMCPServerID,
		"AgenticIssuer":   s.URL() + "/v1/apps/agentic/" + DefaultProjectID + "/" + DefaultMCPServerID,
		"ProjectIssuer":   s.URL() + "/v1/apps/" + DefaultProjectID,
		"WellKnownURL":    s.URL() + "/v1/apps/agentic/" + DefaultProjectID + "/" + DefaultMCPServerID + "/.well-known/openid-configuration",
		"JWKSURL":         s.URL() + "/" + DefaultProjectID + "/.well-known/jwks.json",
		"RegistrationURL": s.URL() + "/v1/mgmt/mcp/client/" + DefaultProjectID + "/" + DefaultMCPServerID + "/register",
	}
	got := map[string]string{
		"ProjectID":       s.ProjectID(),
		"MCPServerID":     s.MCPServerID(),
		"Issuer":          s.Issuer(),
		"AgenticIssuer":   s.AgenticIssuer(),
		"ProjectIssuer":   s.ProjectIssuer(),
		"WellKnownURL":    s.WellKnownURL(),
		"JWKSURL":         s.JWKSURL(),
		"RegistrationURL": s.RegistrationURL(),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s() = %q, want %q", name, got[name], w)
		}
	}
	if len(DefaultProjectID) != 28 || len(DefaultMCPServerID) != 29 || len(DefaultUserID) != 28 {
		t.Errorf("default IDs do not have Descope's lengths")
	}

	s.SetProjectLevelIssuer(true)
	if s.Issuer() != s.ProjectIssuer() || s.WellKnownURL() != s.ProjectIssuer()+"/.well-known/openid-configuration" {
		t.Errorf("after SetProjectLevelIssuer(true): Issuer() = %q, WellKnownURL() = %q", s.Issuer(), s.WellKnownURL())
	}
	_, claims := unverified(t, s.Mint(nil))
	if claims["iss"] != s.ProjectIssuer() {
		t.Errorf("iss = %v, want %q", claims["iss"], s.ProjectIssuer())
	}
	s.SetProjectLevelIssuer(false)
	if s.Issuer() != s.AgenticIssuer() {
		t.Errorf("after SetProjectLevelIssuer(false): Issuer() = %q", s.Issuer())
	}

	custom := newServer(t, WithProjectID("P123"), WithMCPServerID("MS456"), WithProjectLevelIssuer())
	if custom.ProjectID() != "P123" || custom.MCPServerID() != "MS456" {
		t.Errorf("IDs = %q, %q; want P123, MS456", custom.ProjectID(), custom.MCPServerID())
	}
	if custom.Issuer() != custom.URL()+"/v1/apps/P123" {
		t.Errorf("Issuer() = %q with WithProjectLevelIssuer", custom.Issuer())
	}
}

func TestNewServerPanicsOnBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"empty project ID", WithProjectID("")},
		{"slash in project ID", WithProjectID("P1/2")},
		{"empty MCP Server ID", WithMCPServerID("")},
		{"zero lifetime", WithTokenLifetime(0)},
		{"nil clock", WithClock(nil)},
		{"relative MCP Server URL", WithMCPServerURL("mcp.example.com/mcp")},
		{"MCP Server URL with a fragment", WithMCPServerURL("https://mcp.example.com/mcp#x")},
		{"slash in tenant ID", WithTenantIssuer("T/../x")},
		{"client ID metadata documents without a client", WithClientIDMetadataDocuments(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewServer did not panic")
				}
			}()
			// The options are checked before any key is made or any
			// port is opened, so nothing leaks.
			NewServer(tt.opt).Close()
		})
	}
}

func TestDiscovery(t *testing.T) {
	s := newServer(t, WithScopesSupported("openid", "mcp:tools"))
	base := s.URL()
	p, m := s.ProjectID(), s.MCPServerID()

	type issuerForm struct {
		name, issuer, path, authorize, token string
	}
	forms := []issuerForm{
		{
			name:      "agentic",
			issuer:    s.AgenticIssuer(),
			path:      "/v1/apps/agentic/" + p + "/" + m,
			authorize: base + "/oauth2/v1/apps/agentic/" + p + "/" + m + "/authorize",
			token:     base + "/oauth2/v1/apps/agentic/" + p + "/" + m + "/token",
		},
		{
			name:      "project",
			issuer:    s.ProjectIssuer(),
			path:      "/v1/apps/" + p,
			authorize: base + "/oauth2/v1/apps/authorize",
			token:     base + "/oauth2/v1/apps/token",
		},
	}
	locations := []struct {
		name string
		url  func(f issuerForm) string
	}{
		{"issuer openid-configuration", func(f issuerForm) string { return f.issuer + "/.well-known/openid-configuration" }},
		{"issuer oauth-authorization-server", func(f issuerForm) string { return f.issuer + "/.well-known/oauth-authorization-server" }},
		{"RFC 8414 oauth-authorization-server", func(f issuerForm) string { return base + "/.well-known/oauth-authorization-server" + f.path }},
		{"RFC 8414 openid-configuration", func(f issuerForm) string { return base + "/.well-known/openid-configuration" + f.path }},
	}
	wantLists := map[string][]string{
		"response_types_supported":              {"code"},
		"grant_types_supported":                 {"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      {"S256"},
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"token_endpoint_auth_methods_supported": {"none", "client_secret_post", "client_secret_basic"},
		"scopes_supported":                      {"openid", "mcp:tools"},
		"claims_supported":                      {"iss", "aud", "iat", "exp", "sub", "name", "email"},
	}

	// Both issuer forms are served whichever one tokens carry.
	for _, projectLevel := range []bool{false, true} {
		s.SetProjectLevelIssuer(projectLevel)
		for _, f := range forms {
			for _, loc := range locations {
				t.Run(fmt.Sprintf("projectLevel=%v/%s/%s", projectLevel, f.name, loc.name), func(t *testing.T) {
					status, doc := getJSON(t, loc.url(f))
					if status != http.StatusOK {
						t.Fatalf("status %d", status)
					}
					wantStrings := map[string]string{
						"issuer":                 f.issuer,
						"authorization_endpoint": f.authorize,
						"token_endpoint":         f.token,
						"registration_endpoint":  base + "/v1/mgmt/mcp/client/" + p + "/" + m + "/register",
						"jwks_uri":               base + "/" + p + "/.well-known/jwks.json",
					}
					for k, want := range wantStrings {
						if doc[k] != want {
							t.Errorf("%s = %v, want %q", k, doc[k], want)
						}
					}
					for _, k := range []string{"revocation_endpoint", "userinfo_endpoint"} {
						if v, _ := doc[k].(string); !strings.HasPrefix(v, base+"/") {
							t.Errorf("%s = %v, want a URL of the server", k, doc[k])
						}
					}
					for k, want := range wantLists {
						if got := strs(t, doc[k]); !slices.Equal(got, want) {
							t.Errorf("%s = %q, want %q", k, got, want)
						}
					}
				})
			}
		}
	}
	if got := s.MetadataRequests(); got != int64(2*len(forms)*len(locations)) {
		t.Errorf("MetadataRequests() = %d, want %d", got, 2*len(forms)*len(locations))
	}
}

func TestDefaultScopesSupported(t *testing.T) {
	s := newServer(t)
	_, doc := getJSON(t, s.WellKnownURL())
	if got := strs(t, doc["scopes_supported"]); !slices.Equal(got, []string{"openid", "notes:read", "notes:write"}) {
		t.Errorf("scopes_supported = %q", got)
	}
}

func TestNotFound(t *testing.T) {
	s := newServer(t)
	paths := []string{
		"/",
		"/.well-known/openid-configuration",
		"/.well-known/oauth-authorization-server",
		"/v1/apps/Pother/.well-known/openid-configuration",
		"/v1/apps/agentic/" + s.ProjectID() + "/MSother/.well-known/openid-configuration",
		"/Pother/.well-known/jwks.json",
		"/v2/keys/Pother",
		"/oauth2/v1/apps/agentic/" + s.ProjectID() + "/MSother/token",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			if status, _, _ := get(t, s.URL()+p); status != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", p, status)
			}
		})
	}
}

func TestCORSPreflight(t *testing.T) {
	s := newServer(t)
	req, _ := http.NewRequest(http.MethodOptions, s.RegistrationURL(), nil)
	req.Header.Set("Origin", "http://localhost:6274")
	req.Header.Set("Access-Control-Request-Method", "POST")
	status, header, _ := do(t, req)
	if status != http.StatusNoContent || header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: status %d, Access-Control-Allow-Origin %q", status, header.Get("Access-Control-Allow-Origin"))
	}
}

func TestJWKS(t *testing.T) {
	s := newServer(t)
	for _, u := range []string{s.JWKSURL(), s.URL() + "/v2/keys/" + s.ProjectID()} {
		t.Run(u, func(t *testing.T) {
			keys := fetchKeys(t, u)
			if len(keys) != 1 {
				t.Fatalf("got %d keys, want 1", len(keys))
			}
			kid := s.SigningKeyID()
			if !keys[kid].Equal(s.PublicKey(kid)) {
				t.Errorf("published key %q differs from PublicKey(%q)", kid, kid)
			}
			if keys[kid].N.BitLen() != 2048 {
				t.Errorf("key has %d bits, want 2048", keys[kid].N.BitLen())
			}

			// An independent JWK parser accepts the key set.
			_, _, body := get(t, u)
			var set jwkset.JWKSMarshal
			if err := json.Unmarshal(body, &set); err != nil {
				t.Fatal(err)
			}
			jwks, err := set.JWKSlice()
			if err != nil {
				t.Fatalf("jwkset rejects the key set: %v", err)
			}
			if len(jwks) != 1 || jwks[0].Marshal().KID != kid {
				t.Fatalf("jwkset read %d keys", len(jwks))
			}
			if pub, ok := jwks[0].Key().(*rsa.PublicKey); !ok || !pub.Equal(s.PublicKey(kid)) {
				t.Errorf("jwkset key = %T, want the server's RSA key", jwks[0].Key())
			}
		})
	}
	if got := s.JWKSRequests(); got != 4 {
		t.Errorf("JWKSRequests() = %d, want 4", got)
	}
	if s.PublicKey("nope") != nil {
		t.Error("PublicKey of an unknown kid is not nil")
	}
}

func TestKeyRotation(t *testing.T) {
	s := newServer(t)
	kidOf := func(token string) string {
		h, _ := unverified(t, token)
		kid, _ := h["kid"].(string)
		return kid
	}
	published := func() []string {
		keys := fetchKeys(t, s.JWKSURL())
		kids := make([]string, 0, len(keys))
		for kid := range keys {
			kids = append(kids, kid)
		}
		slices.Sort(kids)
		return kids
	}
	sorted := func(kids ...string) []string { return slices.Sorted(slices.Values(kids)) }

	first := s.SigningKeyID()
	if first == "" || kidOf(s.Mint(nil)) != first {
		t.Fatalf("SigningKeyID() = %q, token kid = %q", first, kidOf(s.Mint(nil)))
	}

	// AddKey publishes a key without signing with it.
	added := s.AddKey()
	if added == first || s.SigningKeyID() != first || kidOf(s.Mint(nil)) != first {
		t.Errorf("after AddKey: signing key %q, want still %q", s.SigningKeyID(), first)
	}
	if got := published(); !slices.Equal(got, sorted(first, added)) {
		t.Errorf("after AddKey: key set %q", got)
	}

	// RotateKey publishes a key and signs with it.
	rotated := s.RotateKey()
	if s.SigningKeyID() != rotated || kidOf(s.Mint(nil)) != rotated {
		t.Errorf("after RotateKey: signing key %q, want %q", s.SigningKeyID(), rotated)
	}
	if got := published(); !slices.Equal(got, sorted(first, added, rotated)) {
		t.Errorf("after RotateKey: key set %q", got)
	}
	if got := s.KeyIDs(); !slices.Equal(got, []string{first, added, rotated}) {
		t.Errorf("KeyIDs() = %q", got)
	}
	// A token signed with the new key verifies with the key set.
	parse(t, s, s.Mint(nil))

	// Removing a key that does not sign keeps the signing key.
	s.RemoveKey(first)
	if s.SigningKeyID() != rotated {
		t.Errorf("after RemoveKey(old): signing key %q, want %q", s.SigningKeyID(), rotated)
	}
	if got := published(); !slices.Equal(got, sorted(added, rotated)) {
		t.Errorf("after RemoveKey(old): key set %q", got)
	}

	// Removing the signing key moves signing to a remaining key.
	s.RemoveKey(rotated)
	if s.SigningKeyID() != added || kidOf(s.Mint(nil)) != added {
		t.Errorf("after RemoveKey(signing): signing key %q, want %q", s.SigningKeyID(), added)
	}
	parse(t, s, s.Mint(nil))
	s.RemoveKey("unknown") // ignored

	// With no key left, the last key signs on but is not published.
	s.RemoveKey(added)
	if s.SigningKeyID() != added {
		t.Errorf("after removing every key: signing key %q, want %q", s.SigningKeyID(), added)
	}
	if got := published(); len(got) != 0 {
		t.Errorf("after removing every key: key set %q", got)
	}
	if s.PublicKey(added) == nil || s.PublicKey(first) == nil {
		t.Error("PublicKey forgets removed keys")
	}
	if _, err := jwt.Parse(s.Mint(nil), func(*jwt.Token) (any, error) { return s.PublicKey(added), nil }); err != nil {
		t.Errorf("token of an unpublished key does not verify with PublicKey: %v", err)
	}
}

func TestMintDefaults(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newServer(t, WithClock(func() time.Time { return now }), WithTokenLifetime(5*time.Minute))
	token := s.Mint(nil)
	header, claims := parse(t, s, token,
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuer(s.Issuer()),
		jwt.WithAudience(s.ProjectID()),
		jwt.WithSubject(DefaultUserID))

	if header["alg"] != "RS256" || header["typ"] != "JWT" || header["kid"] != s.SigningKeyID() {
		t.Errorf("header = %v", header)
	}
	want := map[string]any{
		"iss":   s.AgenticIssuer(),
		"sub":   DefaultUserID,
		"azp":   DefaultClientID,
		"drn":   "DS",
		"email": DefaultUserEmail,
		"name":  DefaultUserName,
		"iat":   float64(now.Unix()),
		"exp":   float64(now.Add(5 * time.Minute).Unix()),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	if aud := strs(t, claims["aud"]); !slices.Equal(aud, []string{s.ProjectID()}) {
		t.Errorf("aud = %q", aud)
	}
	if amr := strs(t, claims["amr"]); !slices.Equal(amr, []string{"pwd"}) {
		t.Errorf("amr = %q", amr)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("no jti")
	}
	for _, absent := range []string{"scope", "roles", "permissions", "tenants", "dct", "nbf"} {
		if _, ok := claims[absent]; ok {
			t.Errorf("unexpected claim %s = %v", absent, claims[absent])
		}
	}
	_, again := unverified(t, s.Mint(nil))
	if again["jti"] == claims["jti"] {
		t.Error("two tokens share a jti")
	}
}

func TestMintUserClaims(t *testing.T) {
	u := User{
		Subject:       "U2abcdefghijklmnopqrstuvwxyz",
		Roles:         []string{"admin"},
		Permissions:   []string{"notes:write"},
		Tenants:       map[string]Tenant{"T1": {Roles: []string{"editor"}}, "T2": {Permissions: []string{"p"}}},
		CurrentTenant: "T1",
		AMR:           []string{"otp", "mfa"},
	}
	s := newServer(t, WithUser(u))
	u.Roles[0] = "changed after WithUser" // the server keeps its own copy

	_, claims := unverified(t, s.Mint(nil))
	if claims["sub"] != u.Subject || claims["dct"] != "T1" {
		t.Errorf("sub = %v, dct = %v", claims["sub"], claims["dct"])
	}
	if _, ok := claims["email"]; ok {
		t.Error("email claim for a user without email")
	}
	if got := strs(t, claims["roles"]); !slices.Equal(got, []string{"admin"}) {
		t.Errorf("roles = %q", got)
	}
	if got := strs(t, claims["permissions"]); !slices.Equal(got, []string{"notes:write"}) {
		t.Errorf("permissions = %q", got)
	}
	if got := strs(t, claims["amr"]); !slices.Equal(got, []string{"otp", "mfa"}) {
		t.Errorf("amr = %q", got)
	}
	tenants, _ := claims["tenants"].(map[string]any)
	t1, _ := tenants["T1"].(map[string]any)
	t2, _ := tenants["T2"].(map[string]any)
	if t1 == nil || t2 == nil {
		t.Fatalf("tenants = %v", claims["tenants"])
	}
	if got := strs(t, t1["roles"]); !slices.Equal(got, []string{"editor"}) {
		t.Errorf("tenants.T1.roles = %q", got)
	}
	if got := strs(t, t1["permissions"]); len(got) != 0 {
		t.Errorf("tenants.T1.permissions = %q, want []", got)
	}
	if got := strs(t, t2["permissions"]); !slices.Equal(got, []string{"p"}) {
		t.Errorf("tenants.T2.permissions = %q", got)
	}

	s.SetUser(User{Subject: "U2other"})
	if got := s.User().Subject; got != "U2other" {
		t.Errorf("User().Subject = %q", got)
	}
	_, claims = unverified(t, s.Mint(nil))
	if claims["sub"] != "U2other" {
		t.Errorf("after SetUser: sub = %v", claims["sub"])
	}
	for _, absent := range []string{"roles", "permissions", "tenants", "dct", "email", "name"} {
		if _, ok := claims[absent]; ok {
			t.Errorf("after SetUser: unexpected claim %s", absent)
		}
	}
}

func TestMintOverrides(t *testing.T) {
	s := newServer(t)
	past := time.Now().Add(-time.Hour).Unix()
	tests := []struct {
		name   string
		header map[string]any
		claims map[string]any
		check  func(t *testing.T, header map[string]any, claims jwt.MapClaims)
	}{
		{
			name:   "replace",
			claims: map[string]any{"sub": "U2x", "aud": "https://mcp.example.com", "scope": "notes:read", "exp": past},
			check: func(t *testing.T, _ map[string]any, c jwt.MapClaims) {
				if c["sub"] != "U2x" || c["aud"] != "https://mcp.example.com" || c["scope"] != "notes:read" || c["exp"] != float64(past) {
					t.Errorf("claims = %v", c)
				}
			},
		},
		{
			name:   "add",
			claims: map[string]any{"custom": map[string]any{"a": 1}, "nbf": time.Now().Unix()},
			check: func(t *testing.T, _ map[string]any, c jwt.MapClaims) {
				if _, ok := c["custom"].(map[string]any); !ok || c["nbf"] == nil {
					t.Errorf("claims = %v", c)
				}
			},
		},
		{
			name:   "remove",
			claims: map[string]any{"exp": nil, "iss": nil, "drn": nil, "email": nil, "not-there": nil},
			check: func(t *testing.T, _ map[string]any, c jwt.MapClaims) {
				for _, k := range []string{"exp", "iss", "drn", "email", "not-there"} {
					if _, ok := c[k]; ok {
						t.Errorf("claim %s not removed", k)
					}
				}
				if c["sub"] != DefaultUserID {
					t.Errorf("sub = %v, want the default", c["sub"])
				}
			},
		},
		{
			name:   "header",
			header: map[string]any{"kid": nil, "typ": "at+jwt", "x-test": true},
			check: func(t *testing.T, h map[string]any, _ jwt.MapClaims) {
				if _, ok := h["kid"]; ok || h["typ"] != "at+jwt" || h["x-test"] != true || h["alg"] != "RS256" {
					t.Errorf("header = %v", h)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := s.MintWithHeader(tt.header, tt.claims)
			// Whatever the claims, the signature is made with the
			// signing key.
			if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return s.PublicKey(s.SigningKeyID()), nil },
				jwt.WithoutClaimsValidation()); err != nil {
				t.Fatalf("signature: %v", err)
			}
			h, c := unverified(t, token)
			tt.check(t, h, c)
		})
	}

	// Overriding alg changes the header only; the signature stays RS256.
	token := s.MintWithHeader(map[string]any{"alg": "none"}, nil)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := jwt.SigningMethodRS256.Verify(parts[0]+"."+parts[1], sig, s.PublicKey(s.SigningKeyID())); err != nil {
		t.Errorf("alg=none token is not RS256-signed: %v", err)
	}
	if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return s.PublicKey(s.SigningKeyID()), nil },
		jwt.WithValidMethods([]string{"RS256"})); err == nil {
		t.Error("a verifier accepted a token whose header says alg none")
	}

	// An expired token is refused by a verifier.
	_, err = jwt.Parse(s.Mint(map[string]any{"exp": past}), func(*jwt.Token) (any, error) { return s.PublicKey(s.SigningKeyID()), nil })
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("expired token: err = %v, want ErrTokenExpired", err)
	}
}

// pkce returns a fresh code verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = rand.Text() + rand.Text() // 52 characters of [A-Z2-7]
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// testClient is a client registered with a Server, and the endpoints it
// uses.
type testClient struct {
	id, secret, authMethod string
	redirectURI            string
	authorize, token       string
	revoke, userinfo       string
}

// register registers a client through the discovery document at
// wellKnown, with the given token endpoint auth method ("" for the default).
func register(t *testing.T, wellKnown, authMethod, scope string) *testClient {
	t.Helper()
	status, doc := getJSON(t, wellKnown)
	if status != http.StatusOK {
		t.Fatalf("discovery: status %d", status)
	}
	c := &testClient{
		authMethod:  authMethod,
		redirectURI: "http://127.0.0.1:9999/callback",
		authorize:   doc["authorization_endpoint"].(string),
		token:       doc["token_endpoint"].(string),
		revoke:      doc["revocation_endpoint"].(string),
		userinfo:    doc["userinfo_endpoint"].(string),
	}
	md := map[string]any{
		"redirect_uris":  []string{c.redirectURI, "http://localhost:9999/other"},
		"client_name":    "test client",
		"grant_types":    []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"},
	}
	if authMethod != "" {
		md["token_endpoint_auth_method"] = authMethod
	}
	if scope != "" {
		md["scope"] = scope
	}
	status, resp := postJSON(t, doc["registration_endpoint"].(string), md)
	if status != http.StatusCreated {
		t.Fatalf("register: status %d, %v", status, resp)
	}
	c.id, _ = resp["client_id"].(string)
	c.secret, _ = resp["client_secret"].(string)
	if !strings.HasPrefix(c.id, "DS") {
		t.Errorf("client_id = %q", c.id)
	}
	if _, ok := resp["client_id_issued_at"].(float64); !ok {
		t.Errorf("client_id_issued_at = %v", resp["client_id_issued_at"])
	}
	if got := strs(t, resp["redirect_uris"]); !slices.Equal(got, md["redirect_uris"].([]string)) {
		t.Errorf("redirect_uris = %q", got)
	}
	wantMethod := cmpOr(authMethod, "none")
	if resp["token_endpoint_auth_method"] != wantMethod || resp["client_name"] != "test client" {
		t.Errorf("metadata = %v", resp)
	}
	if (c.secret != "") != (wantMethod != "none") {
		t.Errorf("client_secret = %q for auth method %s", c.secret, wantMethod)
	}
	return c
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// authorizeURL returns the authorization request URL for params added to
// the usual ones; a key mapped to "" is left out.
func (c *testClient) authorizeURL(params map[string]string, challenge string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.id},
		"redirect_uri":          {c.redirectURI},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"state":                 {"xyz"},
	}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return c.authorize + "?" + q.Encode()
}

// getCode runs the authorization request and returns the code.
func (c *testClient) getCode(t *testing.T, params map[string]string, challenge string) string {
	t.Helper()
	status, header, body := get(t, c.authorizeURL(params, challenge))
	if status != http.StatusFound {
		t.Fatalf("authorize: status %d, body %s", status, body)
	}
	loc, err := url.Parse(header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("state") != "xyz" || q.Get("code") == "" || q.Has("iss") || q.Has("error") {
		t.Fatalf("Location = %s", loc)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != c.redirectURI {
		t.Fatalf("redirected to %s, want %s", got, c.redirectURI)
	}
	return q.Get("code")
}

// tokenRequest posts form to the token endpoint, authenticating as the
// client registered.
func (c *testClient) tokenRequest(t *testing.T, endpoint string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	user, password := "", ""
	switch c.authMethod {
	case "client_secret_basic":
		user, password = c.id, c.secret
	case "client_secret_post":
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
	default:
		form.Set("client_id", c.id)
	}
	return postForm(t, endpoint, form, user, password)
}

// redeem exchanges a code.
func (c *testClient) redeem(t *testing.T, code, verifier string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.redirectURI},
		"code_verifier": {verifier},
	}
	for k, v := range extra {
		form[k] = v
	}
	status, header, resp := c.tokenRequest(t, c.token, form)
	if header.Get("Cache-Control") != "no-store" {
		t.Errorf("token endpoint Cache-Control = %q", header.Get("Cache-Control"))
	}
	return status, resp
}

// refresh uses a refresh token.
func (c *testClient) refresh(t *testing.T, refreshToken string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	for k, v := range extra {
		form[k] = v
	}
	status, _, resp := c.tokenRequest(t, c.token, form)
	return status, resp
}

func TestCodeFlow(t *testing.T) {
	const resource = "https://mcp.example.com/mcp"
	user := User{Subject: "U2flowuser", Email: "flow@example.com", Roles: []string{"reader"}}
	for _, projectLevel := range []bool{false, true} {
		opts := []Option{WithUser(user)}
		if projectLevel {
			opts = append(opts, WithProjectLevelIssuer())
		}
		s := newServer(t, opts...)
		for _, method := range []string{"", "none", "client_secret_basic", "client_secret_post"} {
			t.Run(fmt.Sprintf("projectLevel=%v/auth=%s", projectLevel, cmpOr(method, "default")), func(t *testing.T) {
				c := register(t, s.WellKnownURL(), method, "")
				verifier, challenge := pkce()
				code := c.getCode(t, map[string]string{"resource": resource, "scope": "openid notes:read notes:write"}, challenge)

				status, resp := c.redeem(t, code, verifier, url.Values{"resource": {resource}})
				if status != http.StatusOK {
					t.Fatalf("token: status %d, %v", status, resp)
				}
				if resp["token_type"] != "Bearer" || resp["expires_in"] != float64(3600) || resp["scope"] != "openid notes:read notes:write" {
					t.Errorf("token response = %v", resp)
				}
				access, _ := resp["access_token"].(string)
				refreshToken, _ := resp["refresh_token"].(string)
				if refreshToken == "" {
					t.Fatal("no refresh token")
				}
				_, claims := parse(t, s, access, jwt.WithIssuer(s.Issuer()), jwt.WithAudience(resource), jwt.WithSubject("U2flowuser"))
				if got := strs(t, claims["aud"]); !slices.Equal(got, []string{resource}) {
					t.Errorf("aud = %q, want the resource asked for only", got)
				}
				if claims["azp"] != c.id || claims["scope"] != "openid notes:read notes:write" || claims["drn"] != "DS" || claims["email"] != "flow@example.com" {
					t.Errorf("claims = %v", claims)
				}
				if got := strs(t, claims["roles"]); !slices.Equal(got, []string{"reader"}) {
					t.Errorf("roles = %q", got)
				}

				// The code works once only.
				if status, resp := c.redeem(t, code, verifier, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
					t.Errorf("reused code: status %d, %v", status, resp)
				}

				// Asking for more than was granted fails and leaves the
				// refresh token usable.
				if status, resp := c.refresh(t, refreshToken, url.Values{"scope": {"admin"}}); status != http.StatusBadRequest || resp["error"] != "invalid_scope" {
					t.Errorf("widened scope: status %d, %v", status, resp)
				}
				if status, resp := c.refresh(t, refreshToken, url.Values{"resource": {"https://other.example.com"}}); status != http.StatusBadRequest || resp["error"] != "invalid_target" {
					t.Errorf("other resource: status %d, %v", status, resp)
				}

				// Refreshing rotates the refresh token and can narrow the
				// scope.
				status, resp = c.refresh(t, refreshToken, url.Values{"scope": {"notes:read"}, "resource": {resource}})
				if status != http.StatusOK {
					t.Fatalf("refresh: status %d, %v", status, resp)
				}
				newRefresh, _ := resp["refresh_token"].(string)
				if newRefresh == "" || newRefresh == refreshToken {
					t.Errorf("refresh token not rotated: %q", newRefresh)
				}
				if resp["scope"] != "notes:read" {
					t.Errorf("refreshed scope = %v", resp["scope"])
				}
				_, claims = parse(t, s, resp["access_token"].(string), jwt.WithAudience(resource))
				if claims["scope"] != "notes:read" || claims["sub"] != "U2flowuser" {
					t.Errorf("refreshed claims = %v", claims)
				}
				if status, resp := c.refresh(t, refreshToken, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
					t.Errorf("old refresh token: status %d, %v", status, resp)
				}

				// The new refresh token still carries the original scope.
				status, resp = c.refresh(t, newRefresh, nil)
				if status != http.StatusOK || resp["scope"] != "openid notes:read notes:write" {
					t.Fatalf("second refresh: status %d, %v", status, resp)
				}

				// Userinfo answers for the access token.
				req, _ := http.NewRequest(http.MethodGet, c.userinfo, nil)
				req.Header.Set("Authorization", "Bearer "+resp["access_token"].(string))
				if status, _, body := do(t, req); status != http.StatusOK || decodeObject(t, body)["sub"] != "U2flowuser" {
					t.Errorf("userinfo: status %d, %s", status, body)
				}

				// Revocation ends the refresh token.
				last := resp["refresh_token"].(string)
				if status, _, resp := c.tokenRequest(t, c.revoke, url.Values{"token": {last}}); status != http.StatusOK {
					t.Errorf("revoke: status %d, %v", status, resp)
				}
				if status, resp := c.refresh(t, last, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
					t.Errorf("revoked refresh token: status %d, %v", status, resp)
				}
			})
		}
	}
}

func TestCodeFlowDefaults(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "notes:read")
	verifier, challenge := pkce()
	// Without scope the registered one is granted; without resource, and
	// with no MCP Server URL set, the audience is the project.
	code := c.getCode(t, nil, challenge)
	status, resp := c.redeem(t, code, verifier, nil)
	if status != http.StatusOK || resp["scope"] != "notes:read" {
		t.Fatalf("token: status %d, %v", status, resp)
	}
	_, claims := parse(t, s, resp["access_token"].(string))
	if got := strs(t, claims["aud"]); !slices.Equal(got, []string{s.ProjectID()}) {
		t.Errorf("aud = %q", got)
	}
}

// TestMCPServerURLBecomesTheAudience: like the Descope console's MCP Server
// URL, the URL set with WithMCPServerURL or SetMCPServerURL is the aud of
// Mint's tokens and of OAuth tokens for which the client named no resource;
// a resource the client names (RFC 8707) is the aud of its tokens.
func TestMCPServerURLBecomesTheAudience(t *testing.T) {
	const consoleURL = "https://notes.example.com/mcp"
	const asked = "https://asked.example.com/mcp"
	tests := []struct {
		name       string
		opts       []Option
		set        func(s *Server)
		want       string   // MCPServerURL()
		mint       []string // aud of Mint(nil)
		noResource []string // aud of an OAuth token without resource
		withAsked  []string // aud of an OAuth token with resource=asked
	}{
		{name: "not set", mint: []string{DefaultProjectID}, noResource: []string{DefaultProjectID}, withAsked: []string{asked}},
		{name: "WithMCPServerURL", opts: []Option{WithMCPServerURL(consoleURL)}, want: consoleURL,
			mint: []string{consoleURL}, noResource: []string{consoleURL}, withAsked: []string{asked}},
		{name: "SetMCPServerURL", set: func(s *Server) { s.SetMCPServerURL(consoleURL) }, want: consoleURL,
			mint: []string{consoleURL}, noResource: []string{consoleURL}, withAsked: []string{asked}},
		{name: "SetMCPServerURL empty clears it", opts: []Option{WithMCPServerURL(consoleURL)}, set: func(s *Server) { s.SetMCPServerURL("") },
			mint: []string{DefaultProjectID}, noResource: []string{DefaultProjectID}, withAsked: []string{asked}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts...)
			if tc.set != nil {
				tc.set(s)
			}
			if got := s.MCPServerURL(); got != tc.want {
				t.Errorf("MCPServerURL() = %q, want %q", got, tc.want)
			}
			_, claims := parse(t, s, s.Mint(nil))
			if got := strs(t, claims["aud"]); !slices.Equal(got, tc.mint) {
				t.Errorf("Mint: aud = %q, want %q", got, tc.mint)
			}
			for _, flow := range []struct {
				resource string
				want     []string
			}{{"", tc.noResource}, {asked, tc.withAsked}} {
				c := register(t, s.WellKnownURL(), "", "notes:read")
				verifier, challenge := pkce()
				code := c.getCode(t, map[string]string{"resource": flow.resource}, challenge)
				status, resp := c.redeem(t, code, verifier, nil)
				if status != http.StatusOK {
					t.Fatalf("token: status %d, %v", status, resp)
				}
				_, claims := parse(t, s, resp["access_token"].(string))
				if got := strs(t, claims["aud"]); !slices.Equal(got, flow.want) {
					t.Errorf("OAuth, resource %q: aud = %q, want %q", flow.resource, got, flow.want)
				}
				status, resp = c.refresh(t, resp["refresh_token"].(string), nil)
				if status != http.StatusOK {
					t.Fatalf("refresh: status %d, %v", status, resp)
				}
				_, claims = parse(t, s, resp["access_token"].(string))
				if got := strs(t, claims["aud"]); !slices.Equal(got, flow.want) {
					t.Errorf("refreshed, resource %q: aud = %q, want %q", flow.resource, got, flow.want)
				}
			}
		})
	}
}

func TestUserSnapshot(t *testing.T) {
	s := newServer(t, WithUser(User{Subject: "U2first"}))
	c := register(t, s.WellKnownURL(), "", "")
	verifier, challenge := pkce()
	code := c.getCode(t, nil, challenge)
	// The code was issued to the first user.
	s.SetUser(User{Subject: "U2second"})
	status, resp := c.redeem(t, code, verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("token: status %d, %v", status, resp)
	}
	_, claims := unverified(t, resp["access_token"].(string))
	if claims["sub"] != "U2first" {
		t.Errorf("sub = %v, want the user signed in at authorization", claims["sub"])
	}
}

func TestAuthorizeErrors(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	_, challenge := pkce()
	tests := []struct {
		name      string
		params    map[string]string
		wantError string
		redirects bool // the error goes to the redirect URI
	}{
		{"missing client_id", map[string]string{"client_id": ""}, "invalid_request", false},
		{"unknown client", map[string]string{"client_id": "DSnope"}, "invalid_request", false},
		{"unregistered redirect_uri", map[string]string{"redirect_uri": "http://127.0.0.1:9999/evil"}, "invalid_request", false},
		{"redirect_uri prefix", map[string]string{"redirect_uri": c.redirectURI + "/x"}, "invalid_request", false},
		{"missing redirect_uri with two registered", map[string]string{"redirect_uri": ""}, "invalid_request", false},
		{"missing response_type", map[string]string{"response_type": ""}, "invalid_request", true},
		{"token response_type", map[string]string{"response_type": "token"}, "unsupported_response_type", true},
		{"missing code_challenge", map[string]string{"code_challenge": ""}, "invalid_request", true},
		{"plain method", map[string]string{"code_challenge_method": "plain"}, "invalid_request", true},
		{"missing method means plain", map[string]string{"code_challenge_method": ""}, "invalid_request", true},
		{"malformed challenge", map[string]string{"code_challenge": "short"}, "invalid_request", true},
		{"relative resource", map[string]string{"resource": "/mcp"}, "invalid_target", true},
		{"resource with fragment", map[string]string{"resource": "https://mcp.example.com/#x"}, "invalid_target", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := get(t, c.authorizeURL(tt.params, challenge))
			if !tt.redirects {
				if status != http.StatusBadRequest || header.Get("Location") != "" {
					t.Fatalf("status %d, Location %q; want 400 without redirect", status, header.Get("Location"))
				}
				if got := decodeObject(t, body)["error"]; got != tt.wantError {
					t.Errorf("error = %v, want %s", got, tt.wantError)
				}
				return
			}
			if status != http.StatusFound {
				t.Fatalf("status %d, body %s; want 302", status, body)
			}
			loc, err := url.Parse(header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if !strings.HasPrefix(loc.String(), c.redirectURI+"?") || q.Get("error") != tt.wantError || q.Get("state") != "xyz" || q.Has("code") {
				t.Errorf("Location = %s, want error=%s&state=xyz", loc, tt.wantError)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	other := register(t, s.WellKnownURL(), "", "")
	const resource = "https://mcp.example.com"

	tests := []struct {
		name       string
		client     *testClient // nil: c
		verifier   func(good string) string
		extra      url.Values
		wantStatus int
		wantError  string
	}{
		{name: "wrong verifier", verifier: func(string) string { v, _ := pkce(); return v }, wantError: "invalid_grant"},
		{name: "missing verifier", verifier: func(string) string { return "" }, wantError: "invalid_request"},
		{name: "malformed verifier", verifier: func(string) string { return "short" }, wantError: "invalid_grant"},
		{name: "challenge as verifier", verifier: func(g string) string { return s256(g) }, wantError: "invalid_grant"},
		{name: "wrong redirect_uri", extra: url.Values{"redirect_uri": {"http://localhost:9999/other"}}, wantError: "invalid_grant"},
		{name: "wrong resource", extra: url.Values{"resource": {"https://other.example.com"}}, wantError: "invalid_target"},
		{name: "other client", client: other, wantError: "invalid_grant"},
		{name: "unknown client", client: &testClient{id: "DSnope", token: c.token, redirectURI: c.redirectURI}, wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "unsupported grant", extra: url.Values{"grant_type": {"password"}}, wantError: "unsupported_grant_type"},
		{name: "missing grant", extra: url.Values{"grant_type": {""}}, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkce()
			code := c.getCode(t, map[string]string{"resource": resource}, challenge)
			if tt.verifier != nil {
				verifier = tt.verifier(verifier)
			}
			client := c
			if tt.client != nil {
				client = tt.client
			}
			status, resp := client.redeem(t, code, verifier, tt.extra)
			if want := cmpOrInt(tt.wantStatus, http.StatusBadRequest); status != want || resp["error"] != tt.wantError {
				t.Errorf("status %d, %v; want %d %s", status, resp, want, tt.wantError)
			}
		})
	}

	t.Run("reused code", func(t *testing.T) {
		verifier, challenge := pkce()
		code := c.getCode(t, nil, challenge)
		if status, resp := c.redeem(t, code, verifier, nil); status != http.StatusOK {
			t.Fatalf("first use: status %d, %v", status, resp)
		}
		if status, resp := c.redeem(t, code, verifier, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
			t.Errorf("second use: status %d, %v", status, resp)
		}
	})
	t.Run("failed attempt spends the code", func(t *testing.T) {
		verifier, challenge := pkce()
		code := c.getCode(t, nil, challenge)
		wrong, _ := pkce()
		c.redeem(t, code, wrong, nil)
		if status, resp := c.redeem(t, code, verifier, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
			t.Errorf("status %d, %v", status, resp)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		s := newServer(t, WithClock(clock))
		c := register(t, s.WellKnownURL(), "", "")
		verifier, challenge := pkce()
		code := c.getCode(t, nil, challenge)
		mu.Lock()
		now = now.Add(codeLifetime)
		mu.Unlock()
		if status, resp := c.redeem(t, code, verifier, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
			t.Errorf("status %d, %v", status, resp)
		}
	})
}

func cmpOrInt(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func TestClientAuthentication(t *testing.T) {
	s := newServer(t)
	basic := register(t, s.WellKnownURL(), "client_secret_basic", "")
	post := register(t, s.WellKnownURL(), "client_secret_post", "")
	form := func(c *testClient) url.Values {
		_, challenge := pkce()
		return url.Values{"grant_type": {"authorization_code"}, "code": {c.getCode(t, nil, challenge)}, "redirect_uri": {c.redirectURI}}
	}
	tests := []struct {
		name         string
		client       *testClient
		user, secret string // basic credentials
		formAuth     url.Values
	}{
		{name: "basic without secret", client: basic, formAuth: url.Values{"client_id": {basic.id}}},
		{name: "basic wrong secret", client: basic, user: basic.id, secret: "wrong"},
		{name: "post wrong secret", client: post, formAuth: url.Values{"client_id": {post.id}, "client_secret": {"wrong"}}},
		{name: "post without secret", client: post, formAuth: url.Values{"client_id": {post.id}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := form(tt.client)
			for k, v := range tt.formAuth {
				f[k] = v
			}
			status, _, resp := postForm(t, tt.client.token, f, tt.user, tt.secret)
			if status != http.StatusUnauthorized || resp["error"] != "invalid_client" {
				t.Errorf("status %d, %v; want 401 invalid_client", status, resp)
			}
		})
	}
}

func TestRegisterErrors(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name       string
		body       any
		wantStatus int
		wantError  string
	}{
		{"bad JSON", "{not json", http.StatusBadRequest, "invalid_client_metadata"},
		{"JSON array", "[]", http.StatusBadRequest, "invalid_client_metadata"},
		{"missing redirect_uris", map[string]any{"client_name": "x"}, http.StatusBadRequest, "invalid_client_metadata"},
		{"empty redirect_uris", map[string]any{"redirect_uris": []string{}}, http.StatusBadRequest, "invalid_client_metadata"},
		{"relative redirect_uri", map[string]any{"redirect_uris": []string{"/callback"}}, http.StatusBadRequest, "invalid_redirect_uri"},
		{"redirect_uri with fragment", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb#x"}}, http.StatusBadRequest, "invalid_redirect_uri"},
		{"unknown auth method", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, http.StatusBadRequest, "invalid_client_metadata"},
		{"unknown grant type", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "grant_types": []string{"password"}}, http.StatusBadRequest, "invalid_client_metadata"},
		{"too large", `{"redirect_uris":["http://127.0.0.1/cb"],"client_name":"` + strings.Repeat("x", maxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, "invalid_client_metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := postJSON(t, s.RegistrationURL(), tt.body)
			if status != tt.wantStatus || resp["error"] != tt.wantError {
				t.Errorf("status %d, %v; want %d %s", status, resp, tt.wantStatus, tt.wantError)
			}
			if d, _ := resp["error_description"].(string); d == "" {
				t.Error("no error_description")
			}
		})
	}

	// A custom-scheme redirect URI of a native app is accepted.
	status, resp := postJSON(t, s.RegistrationURL(), map[string]any{"redirect_uris": []string{"com.example.app:/callback"}})
	if status != http.StatusCreated {
		t.Errorf("custom scheme: status %d, %v", status, resp)
	}
	if got := strs(t, resp["grant_types"]); !slices.Equal(got, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("default grant_types = %q", got)
	}
	if status, _, _ := get(t, s.RegistrationURL()); status != http.StatusMethodNotAllowed {
		t.Errorf("GET registration endpoint: status %d", status)
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t)
	endpoints := []struct {
		name      string
		url       string
		set       func(Fault)
		count     func() int64
		emptyBody string
	}{
		{"jwks", s.JWKSURL(), s.SetJWKSFault, s.JWKSRequests, `{"keys":[]}`},
		{"jwks v2", s.URL() + "/v2/keys/" + s.ProjectID(), s.SetJWKSFault, s.JWKSRequests, `{"keys":[]}`},
		{"metadata agentic", s.AgenticIssuer() + "/.well-known/openid-configuration", s.SetMetadataFault, s.MetadataRequests, `{}`},
		{"metadata project RFC 8414", s.URL() + "/.well-known/oauth-authorization-server/v1/apps/" + s.ProjectID(), s.SetMetadataFault, s.MetadataRequests, `{}`},
	}
	faults := []struct {
		fault      Fault
		wantStatus int
		check      func(t *testing.T, body []byte, emptyBody string)
	}{
		{FaultUnavailable, http.StatusServiceUnavailable, func(t *testing.T, body []byte, _ string) {
			if len(body) == 0 || len(body) > 200 {
				t.Errorf("body %q, want a short one", body)
			}
		}},
		{FaultGarbage, http.StatusOK, func(t *testing.T, body []byte, _ string) {
			if json.Valid(body) {
				t.Errorf("body %q is valid JSON", body)
			}
		}},
		{FaultEmpty, http.StatusOK, func(t *testing.T, body []byte, emptyBody string) {
			if string(body) != emptyBody {
				t.Errorf("body %q, want %s", body, emptyBody)
			}
		}},
		{FaultNone, http.StatusOK, func(t *testing.T, body []byte, _ string) {
			if m := decodeObject(t, body); m["keys"] == nil && m["issuer"] == nil {
				t.Errorf("body %q is neither a key set nor metadata", body)
			}
		}},
	}
	for _, ep := range endpoints {
		for _, f := range faults {
			t.Run(ep.name+"/"+f.fault.String(), func(t *testing.T) {
				ep.set(f.fault)
				defer ep.set(FaultNone)
				before := ep.count()
				status, _, body := get(t, ep.url)
				if status != f.wantStatus {
					t.Errorf("status %d, want %d", status, f.wantStatus)
				}
				f.check(t, body, ep.emptyBody)
				if got := ep.count() - before; got != 1 {
					t.Errorf("request count grew by %d, want 1", got)
				}
			})
		}
	}

	// A JWKS fault leaves metadata alone and the other way round.
	s.SetJWKSFault(FaultUnavailable)
	if status, _, _ := get(t, s.WellKnownURL()); status != http.StatusOK {
		t.Errorf("metadata with a JWKS fault: status %d", status)
	}
	s.SetJWKSFault(FaultNone)
	s.SetMetadataFault(FaultUnavailable)
	if status, _, _ := get(t, s.JWKSURL()); status != http.StatusOK {
		t.Errorf("JWKS with a metadata fault: status %d", status)
	}
	s.SetMetadataFault(FaultNone)

	if got := Fault(42).String(); got != "Fault(42)" {
		t.Errorf("Fault(42).String() = %q", got)
	}
}

// startRequest sends a GET to u in the background; the returned channel
// yields its error (nil for any answer) once it ends.
func startRequest(ctx context.Context, client *http.Client, u string) <-chan error {
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	return done
}

// awaitWaiting waits until n handlers of s have started to wait.
func awaitWaiting(t *testing.T, s *Server, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-s.waiting:
		case <-timeout:
			t.Fatal("handler did not start waiting")
		}
	}
}

// awaitDone waits for a background request to end and returns its error.
func awaitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("request did not end")
		return nil
	}
}

// handlersRunning returns the number of goroutines inside the package's
// waiting code.
func handlersRunning() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "descopetest.(*Server).serveFault(") +
		strings.Count(string(buf), "descopetest.(*Server).pause(")
}

// awaitNoHandlers waits for the goroutines of released handlers to end
// and returns how many are still running after a generous deadline. Nothing
// signals the very end of a goroutine, so this polls, as goroutine leak
// checkers do.
func awaitNoHandlers() int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := handlersRunning()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHangReleasedByClientCancel(t *testing.T) {
	s := newServer(t)
	s.SetJWKSFault(FaultHang)
	ctx, cancel := context.WithCancel(context.Background())
	done := startRequest(ctx, s.Client(), s.JWKSURL())
	awaitWaiting(t, s, 1)
	cancel()
	if err := awaitDone(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if s.JWKSRequests() != 1 {
		t.Errorf("JWKSRequests() = %d, want 1", s.JWKSRequests())
	}
	// The server still answers once the fault is cleared.
	s.SetJWKSFault(FaultNone)
	if status, _, _ := get(t, s.JWKSURL()); status != http.StatusOK {
		t.Errorf("status %d after clearing the fault", status)
	}
}

func TestCloseReleasesWaitingRequests(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.SetJWKSFault(FaultHang)
	s.SetMetadataFault(FaultHang)
	s.SetMetadataDelay(time.Hour) // the delay comes first and is also released

	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	ctx := t.Context()
	dones := []<-chan error{
		startRequest(ctx, client, s.JWKSURL()),
		startRequest(ctx, client, s.URL()+"/v2/keys/"+s.ProjectID()),
		startRequest(ctx, client, s.WellKnownURL()),
	}
	awaitWaiting(t, s, len(dones))

	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while requests were held")
	}
	for i, done := range dones {
		if err := awaitDone(t, done); err == nil {
			t.Errorf("request %d got an answer, want a dropped connection", i)
		}
	}
	// Close has waited for every connection to close; a handler goroutine
	// may still be unwinding, but none may stay.
	if n := awaitNoHandlers(); n != 0 {
		t.Errorf("%d handlers still running after Close", n)
	}
	if s.JWKSRequests() != 2 || s.MetadataRequests() != 1 {
		t.Errorf("JWKSRequests() = %d, MetadataRequests() = %d; want 2, 1", s.JWKSRequests(), s.MetadataRequests())
	}
	s.Close() // a second Close is harmless
}

func TestJWKSDelay(t *testing.T) {
	s := newServer(t)
	const delay = 150 * time.Millisecond
	s.SetJWKSDelay(delay)
	start := time.Now()
	if status, _, _ := get(t, s.JWKSURL()); status != http.StatusOK {
		t.Errorf("status %d", status)
	}
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("answered after %v, want at least %v", elapsed, delay)
	}

	// A delay is combined with a fault.
	s.SetJWKSFault(FaultUnavailable)
	if status, _, _ := get(t, s.JWKSURL()); status != http.StatusServiceUnavailable {
		t.Errorf("delay and fault: status %d", status)
	}
	s.SetJWKSFault(FaultNone)

	// A client that gives up ends the wait.
	s.SetJWKSDelay(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := startRequest(ctx, s.Client(), s.JWKSURL())
	awaitWaiting(t, s, 3) // the two delayed requests above, then this one
	cancel()
	if err := awaitDone(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}

	s.SetJWKSDelay(0)
	if status, _, _ := get(t, s.JWKSURL()); status != http.StatusOK {
		t.Errorf("after removing the delay: status %d", status)
	}
	if got := s.JWKSRequests(); got != 4 {
		t.Errorf("JWKSRequests() = %d, want 4", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				switch (i + j) % 5 {
				case 0:
					s.Mint(map[string]any{"n": j})
				case 1:
					s.SetUser(User{Subject: fmt.Sprint("U2user", i, j), Roles: []string{"r"}})
				case 2:
					s.SetJWKSFault(Fault(j % 2))
					s.SetProjectLevelIssuer(j%2 == 0)
				case 3:
					resp, err := http.Get(s.JWKSURL())
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				case 4:
					verifier, challenge := pkce()
					q := c.authorizeURL(nil, challenge)
					resp, err := noRedirect.Get(q)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					loc, _ := url.Parse(resp.Header.Get("Location"))
					form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
						"redirect_uri": {c.redirectURI}, "code_verifier": {verifier}, "client_id": {c.id}}
					resp, err = http.PostForm(c.token, form)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("token: status %d", resp.StatusCode)
					}
				}
			}
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.RotateKey()
		s.RemoveKey(s.KeyIDs()[0])
	}()
	wg.Wait()
}

func TestUserInfo(t *testing.T) {
	s := newServer(t)
	_, doc := getJSON(t, s.WellKnownURL())
	endpoint := doc["userinfo_endpoint"].(string)
	unpublished := s.Mint(nil)
	s.RotateKey()
	s.RemoveKey(s.KeyIDs()[0])
	tests := []struct {
		name       string
		auth       string
		wantStatus int
	}{
		{"valid", "Bearer " + s.Mint(nil), http.StatusOK},
		{"scheme is case-insensitive", "bearer " + s.Mint(nil), http.StatusOK},
		{"project-level issuer", "Bearer " + s.Mint(map[string]any{"iss": s.ProjectIssuer()}), http.StatusOK},
		{"missing", "", http.StatusUnauthorized},
		{"basic", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"expired", "Bearer " + s.Mint(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}), http.StatusUnauthorized},
		{"foreign issuer", "Bearer " + s.Mint(map[string]any{"iss": "https://api.descope.com/v1/apps/P1"}), http.StatusUnauthorized},
		{"unpublished key", "Bearer " + unpublished, http.StatusUnauthorized},
		{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			status, header, body := do(t, req)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d", status, tt.wantStatus)
			}
			if status == http.StatusOK {
				info := decodeObject(t, body)
				if info["sub"] != DefaultUserID || info["email"] != DefaultUserEmail || info["name"] != DefaultUserName {
					t.Errorf("userinfo = %v", info)
				}
			} else if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestRefreshTokenExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newServer(t, WithClock(clock))
	c := register(t, s.WellKnownURL(), "", "")
	verifier, challenge := pkce()
	_, resp := c.redeem(t, c.getCode(t, nil, challenge), verifier, nil)
	refreshToken, _ := resp["refresh_token"].(string)
	mu.Lock()
	now = now.Add(refreshLifetime)
	mu.Unlock()
	if status, resp := c.refresh(t, refreshToken, nil); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
		t.Errorf("expired refresh token: status %d, %v", status, resp)
	}
}

func TestRevokeOtherClientsToken(t *testing.T) {
	s := newServer(t)
	c := register(t, s.WellKnownURL(), "", "")
	other := register(t, s.WellKnownURL(), "", "")
	verifier, challenge := pkce()
	_, resp := c.redeem(t, c.getCode(t, nil, challenge), verifier, nil)
	refreshToken, _ := resp["refresh_token"].(string)
	// RFC 7009 answers 200 but must not revoke another client's token.
	if status, _, _ := other.tokenRequest(t, other.revoke, url.Values{"token": {refreshToken}}); status != http.StatusOK {
		t.Errorf("revoke: status %d", status)
	}
	if status, resp := c.refresh(t, refreshToken, nil); status != http.StatusOK {
		t.Errorf("refresh after another client's revoke: status %d, %v", status, resp)
	}
}
