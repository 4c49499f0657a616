package descope_test

// Hostile tokens: the tricks of the JOSE/JWT attack literature, each sent
// over real HTTP to an endpoint protected by auth.Handler, and each checked
// three ways: the wire answer (401, the fixed invalid_token challenge and
// body, nothing internal in any header), the refusal reason of a direct
// VerifyToken call, and a second provider that allows every asymmetric
// algorithm (so that refusals do not merely rest on the RS256-only default).
//
// The key set the providers load is the fake Descope's, plus one more RSA key
// that this file holds (the "trusted" key, published without an "alg"). It
// stands for Descope whenever a case needs exact bytes signed by the issuer,
// such as duplicate JSON keys or invalid UTF-8, which Mint cannot produce.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

const (
	hostileServerURL = "https://mcp.example.com"
	hostileResource  = hostileServerURL + "/mcp"
	hostileMetadata  = hostileServerURL + "/.well-known/oauth-protected-resource/mcp"
	hostileScope     = "mcp:tools"
	hostileChallenge = `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not issued for this server.", scope="mcp:tools", resource_metadata="` + hostileMetadata + `"`
	hostileBody      = `{"error":"invalid_token","error_description":"The access token is invalid, expired, or not issued for this server."}`
	hostileOK        = "served"
)

// hostileEnv is a fake Descope, the key endpoint the providers load, an
// attacker's server, the attacker's keys, and a protected endpoint.
type hostileEnv struct {
	ds    *descopetest.Server
	other *descopetest.Server // another Descope project: real Descope keys, not this project's
	keys  *httptest.Server    // the project's key set: ds's keys plus the trusted key
	evil  *httptest.Server    // the attacker's key and certificate server; must never be asked
	srv   *httptest.Server    // auth.Handler(p, ok)

	evilHits atomic.Int64
	panics   atomic.Int64
	handler  http.Handler
	issuer   string
	p        *descope.Provider // the default: RS256 only
	loose    *descope.Provider // every asymmetric algorithm

	victimKID string
	victimPub *rsa.PublicKey
	victimJWK []byte // the victim key's JWK, byte for byte as published
	keySetDoc []byte // the key set document as published

	trustedKID string
	trusted    *rsa.PrivateKey

	evilRSA   *rsa.PrivateKey
	evilSmall *rsa.PrivateKey // 1024 bits
	evilEC    *ecdsa.PrivateKey
	evilEd    ed25519.PrivateKey
	evilCert  []byte // self-signed certificate for evilRSA, DER
	now       time.Time

	wire, inProcess int // how the cases travelled
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	e := &hostileEnv{now: time.Now()}
	e.ds = descopetest.NewServer(descopetest.WithUser(descopetest.User{Subject: "U2alice", Roles: []string{"viewer"}}))
	t.Cleanup(e.ds.Close)
	e.other = descopetest.NewServer(descopetest.WithProjectID("P2otherProject0000000000000"))
	t.Cleanup(e.other.Close)
	e.victimKID = e.ds.SigningKeyID()
	e.victimPub = e.ds.PublicKey(e.victimKID)

	var err error
	e.trusted, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	e.trustedKID = "trusted-" + e.victimKID[len(e.victimKID)-6:]
	e.evilRSA, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	e.evilSmall, err = rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	e.evilEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, e.evilEd, err = ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Descope signing key"},
		NotBefore:    e.now.Add(-time.Hour),
		NotAfter:     e.now.Add(24 * time.Hour),
	}
	e.evilCert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &e.evilRSA.PublicKey, e.evilRSA)
	require.NoError(t, err)

	// The published key set, as served: the victim's JWK byte for byte.
	resp, err := e.ds.Client().Get(e.ds.JWKSURL())
	require.NoError(t, err)
	e.keySetDoc, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(e.keySetDoc, &set))
	require.Len(t, set.Keys, 1)
	e.victimJWK = set.Keys[0]

	e.keys = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+e.ds.ProjectID()+"/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		resp, err := e.ds.Client().Get(e.ds.JWKSURL())
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var set struct {
			Keys []any `json:"keys"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&set) != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		set.Keys = append(set.Keys, hostileRSAJWK(e.trustedKID, &e.trusted.PublicKey, false))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(e.keys.Close)
	e.issuer = e.keys.URL + "/v1/apps/agentic/" + e.ds.ProjectID() + "/" + e.ds.MCPServerID()

	e.evil = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.evilHits.Add(1)
		switch r.URL.Path {
		case "/jwks.json":
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{hostileRSAJWK("evil-1", &e.evilRSA.PublicKey, true)}})
		case "/cert.pem":
			_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: e.evilCert})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(e.evil.Close)

	e.p = e.provider(t, descope.Config{})
	e.loose = e.provider(t, descope.Config{Algorithms: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}})

	guarded := auth.Handler(e.p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, hostileOK)
	}))
	e.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				e.panics.Add(1)
				panic(v)
			}
		}()
		guarded.ServeHTTP(w, r)
	})
	e.srv = httptest.NewServer(e.handler)
	t.Cleanup(e.srv.Close)
	return e
}

// provider builds a provider for the environment's key set from cfg, and
// checks that its keys loaded and that it accepts what it should.
func (e *hostileEnv) provider(t *testing.T, cfg descope.Config) *descope.Provider {
	t.Helper()
	cfg.WellKnownURL = e.issuer + "/.well-known/openid-configuration"
	cfg.ServerURL = hostileServerURL
	cfg.RequiredScopes = []string{hostileScope}
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := descope.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	_, err = p.VerifyToken(context.Background(), e.mint(nil))
	require.NoError(t, err)
	_, err = p.VerifyToken(context.Background(), e.trustedRaw(string(hostileJSON(e.claims(nil)))))
	require.NoError(t, err)
	return p
}

// claims are the claims of a perfect token for this server, plus extra (a
// nil value removes a claim). Attackers sign these, so that only the
// signature can stop them.
func (e *hostileEnv) claims(extra map[string]any) map[string]any {
	c := map[string]any{
		"iss":   e.issuer,
		"sub":   "U2alice",
		"aud":   []string{hostileResource},
		"azp":   descopetest.DefaultClientID,
		"scope": hostileScope,
		"roles": []string{"admin"},
		"exp":   e.now.Add(time.Hour).Unix(),
		"iat":   e.now.Unix(),
		"drn":   "DS",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// mint has the fake Descope sign a token for this server with claims
// overridden by extra.
func (e *hostileEnv) mint(extra map[string]any) string {
	return e.mintH(nil, extra)
}

func (e *hostileEnv) mintH(header, extra map[string]any) string {
	c := map[string]any{"iss": e.issuer, "aud": []string{hostileResource}, "scope": hostileScope}
	for k, v := range extra {
		c[k] = v
	}
	return e.ds.MintWithHeader(header, c)
}

// header is a JOSE header with alg and the victim's kid, plus extra.
func (e *hostileEnv) header(alg string, extra map[string]any) map[string]any {
	h := map[string]any{"alg": alg, "typ": "JWT", "kid": e.victimKID}
	for k, v := range extra {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return h
}

func (e *hostileEnv) trustedHeader() []byte {
	return hostileJSON(map[string]any{"alg": "RS256", "typ": "JWT", "kid": e.trustedKID})
}

// forge signs the perfect claims with a header of alg plus hdr.
func (e *hostileEnv) forge(alg string, hdr map[string]any, sign hostileSigner) string {
	return e.signRaw(hostileJSON(e.header(alg, hdr)), hostileJSON(e.claims(nil)), sign)
}

// signRaw builds a compact JWS from exact header and claims bytes.
func (e *hostileEnv) signRaw(header, claims []byte, sign hostileSigner) string {
	return hostileCompact(header, claims, sign)
}

// trustedRaw signs exact claims bytes with the trusted (published) key, as
// Descope would have.
func (e *hostileEnv) trustedRaw(claims string) string {
	return hostileCompact(e.trustedHeader(), []byte(claims), hostileRS256(e.trusted))
}

// perfectClaimsJSON is the perfect claims as JSON without the closing
// brace, so that a case can append members.
func (e *hostileEnv) perfectClaimsJSON(drop ...string) string {
	c := e.claims(nil)
	for _, k := range drop {
		delete(c, k)
	}
	b := hostileJSON(c)
	return string(b[:len(b)-1])
}

// send presents token to the protected endpoint and returns the answer.
// Tokens that net/http cannot carry in a header (control or non-ASCII
// bytes) are handed to the same handler in process instead.
func (e *hostileEnv) send(t *testing.T, token string) (int, http.Header, string) {
	t.Helper()
	value := "Bearer " + token
	if hostilePrintable(value) {
		e.wire++
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/mcp", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", value)
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(body)
	}
	e.inProcess++
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{}`))
	req.Header["Authorization"] = []string{value}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

func hostilePrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// --- JOSE building blocks ---------------------------------------------------

type hostileSigner func(input []byte) []byte

func hostileB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func hostileJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// hostileCompact returns b64(header).b64(claims).b64(sign(input)); a nil
// signer leaves the signature empty.
func hostileCompact(header, claims []byte, sign hostileSigner) string {
	in := hostileB64(header) + "." + hostileB64(claims)
	if sign == nil {
		return in + "."
	}
	return in + "." + hostileB64(sign([]byte(in)))
}

func hostileRS(key *rsa.PrivateKey, h crypto.Hash) hostileSigner {
	return func(in []byte) []byte {
		d := h.New()
		d.Write(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, d.Sum(nil))
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func hostileRS256(key *rsa.PrivateKey) hostileSigner { return hostileRS(key, crypto.SHA256) }

func hostilePS256(key *rsa.PrivateKey) hostileSigner {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func hostileES256(key *ecdsa.PrivateKey) hostileSigner {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
		if err != nil {
			panic(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

func hostileEdDSA(key ed25519.PrivateKey) hostileSigner {
	return func(in []byte) []byte { return ed25519.Sign(key, in) }
}

func hostileHS(h func() hash.Hash, secret []byte) hostileSigner {
	return func(in []byte) []byte {
		m := hmac.New(h, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// hostileFixed returns a signer that ignores its input.
func hostileFixed(sig []byte) hostileSigner { return func([]byte) []byte { return sig } }

func hostileRSAJWK(kid string, pub *rsa.PublicKey, withAlg bool) map[string]any {
	k := map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig",
		"n": hostileB64(pub.N.Bytes()),
		"e": hostileB64(big.NewInt(int64(pub.E)).Bytes()),
	}
	if withAlg {
		k["alg"] = "RS256"
	}
	return k
}

func hostileECJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "x": hostileB64(b[1:33]), "y": hostileB64(b[33:])}
}

// hostileSplit splits a compact token into its three segments.
func hostileSplit(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}

// hostileRehead replaces the header of tok, keeping its payload and
// signature.
func hostileRehead(tok string, header map[string]any) string {
	_, p, s := hostileSplit(tok)
	return hostileB64(hostileJSON(header)) + "." + p + "." + s
}

// hostileNested returns n levels of open, then inner, then n of close.
func hostileNested(n int, open, inner, close string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// --- the table ----------------------------------------------------------------

type hostileCase struct {
	category string
	name     string
	token    func(e *hostileEnv) string
	reason   string // TokenError.Reason from the default provider
}

func hostileCases() []hostileCase {
	var cases []hostileCase
	add := func(category, name, reason string, token func(e *hostileEnv) string) {
		cases = append(cases, hostileCase{category: category, name: name, token: token, reason: reason})
	}
	const (
		sig       = "signature"
		malformed = "malformed"
		unknown   = "unknown_key"
		noKID     = "no_key_id"
		claimType = "claim_type"
		missing   = "missing_claim"
		issuer    = "issuer"
		audience  = "audience"
	)

	// Keys and key URLs in the header: an attacker signs with its own key
	// and names it. None of them may be fetched or trusted.
	add("header key injection", "jwk: attacker key embedded, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"jwk": hostileRSAJWK(e.victimKID, &e.evilRSA.PublicKey, true)}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jwk: attacker key embedded under its own kid", unknown, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"kid": "evil-1", "jwk": hostileRSAJWK("evil-1", &e.evilRSA.PublicKey, true)}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jwk: attacker key embedded, no kid", noKID, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"kid": nil, "jwk": hostileRSAJWK("evil-1", &e.evilRSA.PublicKey, true)}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jwk: attacker private key (with d) embedded", sig, func(e *hostileEnv) string {
		k := hostileRSAJWK(e.victimKID, &e.evilRSA.PublicKey, true)
		k["d"] = hostileB64(e.evilRSA.D.Bytes())
		return e.forge("RS256", map[string]any{"jwk": k}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jwk: the victim's own public key embedded, attacker signature", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"jwk": json.RawMessage(e.victimJWK)}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jwk: attacker EC key embedded, ES256", sig, func(e *hostileEnv) string {
		return e.forge("ES256", map[string]any{"jwk": hostileECJWK(e.victimKID, &e.evilEC.PublicKey)}, hostileES256(e.evilEC))
	})
	add("header key injection", "jku: attacker key set, attacker kid", unknown, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"kid": "evil-1", "jku": e.evil.URL + "/jwks.json"}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jku: attacker key set, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"jku": e.evil.URL + "/jwks.json"}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jku: attacker key set behind the real key URL's host", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"jku": e.keys.URL + "@" + strings.TrimPrefix(e.evil.URL, "http://") + "/jwks.json"}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "jku and jwk together", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"jku": e.evil.URL + "/jwks.json", "jwk": hostileRSAJWK(e.victimKID, &e.evilRSA.PublicKey, true)}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "x5u: attacker certificate URL, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"x5u": e.evil.URL + "/cert.pem"}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "x5u: attacker certificate URL, attacker kid", unknown, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"kid": "evil-cert", "x5u": e.evil.URL + "/cert.pem"}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "x5c: self-signed attacker certificate, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(e.evilCert)}}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "x5c: self-signed attacker certificate, no kid", noKID, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"kid": nil, "x5c": []string{base64.StdEncoding.EncodeToString(e.evilCert)}}, hostileRS256(e.evilRSA))
	})
	add("header key injection", "x5t and x5t#S256 of the attacker certificate", sig, func(e *hostileEnv) string {
		s1 := sha256.Sum256(e.evilCert)
		return e.forge("RS256", map[string]any{"x5t#S256": hostileB64(s1[:]), "x5t": hostileB64(s1[:20])}, hostileRS256(e.evilRSA))
	})

	// kid injection: looked up, never interpreted.
	kidCase := func(name, reason string, kid func(e *hostileEnv) any) {
		add("kid injection", name, reason, func(e *hostileEnv) string {
			return e.forge("RS256", map[string]any{"kid": kid(e)}, hostileRS256(e.evilRSA))
		})
	}
	kidCase("path traversal to /dev/null", unknown, func(*hostileEnv) any { return "../../../../../../../dev/null" })
	kidCase("path traversal to the key set", unknown, func(e *hostileEnv) any { return "../" + e.ds.ProjectID() + "/.well-known/jwks.json" })
	kidCase("path traversal ending in the victim kid", unknown, func(e *hostileEnv) any { return "../keys/" + e.victimKID })
	kidCase("SQL injection", unknown, func(*hostileEnv) any { return "x' UNION SELECT 'secret' --" })
	kidCase("SQL injection after the victim kid", unknown, func(e *hostileEnv) any { return e.victimKID + "' OR '1'='1" })
	kidCase("shell injection", unknown, func(*hostileEnv) any { return "key|cat /etc/passwd;`id`$(id)" })
	kidCase("URL of an attacker key", unknown, func(e *hostileEnv) any { return e.evil.URL + "/jwks.json" })
	kidCase("victim kid followed by NUL", unknown, func(e *hostileEnv) any { return e.victimKID + "\x00" })
	kidCase("victim kid in lower case", unknown, func(e *hostileEnv) any { return strings.ToLower(e.victimKID) })
	kidCase("victim kid with a trailing space", unknown, func(e *hostileEnv) any { return e.victimKID + " " })
	kidCase("8 KiB kid", unknown, func(*hostileEnv) any { return strings.Repeat("k", 8<<10) })
	kidCase("format directives", unknown, func(*hostileEnv) any { return "%s%s%s%n%x{{.}}${jndi:ldap://x}" })
	kidCase("empty kid", noKID, func(*hostileEnv) any { return "" })
	kidCase("kid null", noKID, func(*hostileEnv) any { return json.RawMessage("null") })
	kidCase("kid a number", noKID, func(*hostileEnv) any { return 1 })
	kidCase("kid a boolean", noKID, func(*hostileEnv) any { return true })
	kidCase("kid an object holding the victim kid", noKID, func(e *hostileEnv) any { return map[string]any{"kid": e.victimKID} })
	kidCase("kid an array holding the victim kid", noKID, func(e *hostileEnv) any { return []string{e.victimKID} })
	add("kid injection", "kid twice: victim, then attacker (JSON keeps the last)", unknown, func(e *hostileEnv) string {
		h := fmt.Sprintf(`{"alg":"RS256","kid":%q,"kid":"evil-1"}`, e.victimKID)
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.evilRSA))
	})
	add("kid injection", "kid twice: attacker, then victim", sig, func(e *hostileEnv) string {
		h := fmt.Sprintf(`{"alg":"RS256","kid":"evil-1","kid":%q}`, e.victimKID)
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.evilRSA))
	})
	add("kid injection", "signed by one published key, naming another", sig, func(e *hostileEnv) string {
		return e.forge("RS256", nil, hostileRS256(e.trusted))
	})

	// crit: no extension is understood, so any crit is refused, even on a
	// token the issuer signed.
	add("crit", `crit ["exp"], issuer-signed`, "critical_header", func(e *hostileEnv) string {
		return e.mintH(map[string]any{"crit": []string{"exp"}, "exp": 1}, nil)
	})
	add("crit", `crit ["b64"] with b64 false (RFC 7797), issuer-signed`, "critical_header", func(e *hostileEnv) string {
		return e.mintH(map[string]any{"crit": []string{"b64"}, "b64": false}, nil)
	})
	add("crit", "crit empty list, issuer-signed", "critical_header", func(e *hostileEnv) string {
		return e.mintH(map[string]any{"crit": []string{}}, nil)
	})
	add("crit", "crit a string, issuer-signed", "critical_header", func(e *hostileEnv) string {
		return e.mintH(map[string]any{"crit": "exp"}, nil)
	})
	add("crit", "crit null, issuer-signed", "critical_header", func(e *hostileEnv) string {
		h := fmt.Sprintf(`{"alg":"RS256","kid":%q,"crit":null}`, e.trustedKID)
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.trusted))
	})
	add("crit", "crit, attacker-signed", sig, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"crit": []string{"exp"}, "exp": 1}, hostileRS256(e.evilRSA))
	})

	// Algorithm confusion: the public key used as an HMAC secret in every
	// form an implementation might hand to HMAC, and algorithm swaps.
	pkixDER := func(e *hostileEnv) []byte {
		der, err := x509.MarshalPKIXPublicKey(e.victimPub)
		if err != nil {
			panic(err)
		}
		return der
	}
	hsCase := func(name, alg string, h func() hash.Hash, secret func(e *hostileEnv) []byte) {
		add("algorithm confusion", name, sig, func(e *hostileEnv) string {
			return e.forge(alg, nil, hostileHS(h, secret(e)))
		})
	}
	pemPKIX := func(e *hostileEnv) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkixDER(e)})
	}
	hsCase("HS256, secret = public key PEM (PKIX)", "HS256", sha256.New, pemPKIX)
	hsCase("HS256, secret = public key PEM without the final newline", "HS256", sha256.New, func(e *hostileEnv) []byte {
		return []byte(strings.TrimSuffix(string(pemPKIX(e)), "\n"))
	})
	hsCase("HS256, secret = public key PEM (PKCS#1)", "HS256", sha256.New, func(e *hostileEnv) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(e.victimPub)})
	})
	hsCase("HS256, secret = public key DER (PKIX)", "HS256", sha256.New, pkixDER)
	hsCase("HS256, secret = public key DER (PKCS#1)", "HS256", sha256.New, func(e *hostileEnv) []byte { return x509.MarshalPKCS1PublicKey(e.victimPub) })
	hsCase("HS256, secret = the JWK as published", "HS256", sha256.New, func(e *hostileEnv) []byte { return e.victimJWK })
	hsCase("HS256, secret = the key set document", "HS256", sha256.New, func(e *hostileEnv) []byte { return e.keySetDoc })
	hsCase("HS256, secret = the modulus", "HS256", sha256.New, func(e *hostileEnv) []byte { return e.victimPub.N.Bytes() })
	hsCase("HS256, secret = the modulus, base64url", "HS256", sha256.New, func(e *hostileEnv) []byte { return []byte(hostileB64(e.victimPub.N.Bytes())) })
	hsCase("HS384, secret = public key PEM", "HS384", sha512.New384, pemPKIX)
	hsCase("HS512, secret = public key PEM", "HS512", sha512.New, pemPKIX)
	hsCase("HS256, empty secret", "HS256", sha256.New, func(*hostileEnv) []byte { return nil })
	add("algorithm confusion", "HS256, kid /dev/null, empty secret", sig, func(e *hostileEnv) string {
		return e.forge("HS256", map[string]any{"kid": "../../../../dev/null"}, hostileHS(sha256.New, nil))
	})
	add("algorithm confusion", "HS256, secret = PEM of a published key without alg", sig, func(e *hostileEnv) string {
		der, _ := x509.MarshalPKIXPublicKey(&e.trusted.PublicKey)
		return e.forge("HS256", map[string]any{"kid": e.trustedKID}, hostileHS(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	})
	add("algorithm confusion", "RS256 to PS256: header swapped on the issuer's signature", sig, func(e *hostileEnv) string {
		return hostileRehead(e.mint(nil), e.header("PS256", nil))
	})
	add("algorithm confusion", "PS256 signed by the attacker, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("PS256", nil, hostilePS256(e.evilRSA))
	})
	add("algorithm confusion", "PS256 on a published key without alg, attacker-signed", sig, func(e *hostileEnv) string {
		return e.forge("PS256", map[string]any{"kid": e.trustedKID}, hostilePS256(e.evilRSA))
	})
	add("algorithm confusion", "RS512 header on the issuer's RS256 signature", sig, func(e *hostileEnv) string {
		return hostileRehead(e.mint(nil), e.header("RS512", nil))
	})
	add("algorithm confusion", "RS512 signed by the attacker", sig, func(e *hostileEnv) string {
		return e.forge("RS512", nil, hostileRS(e.evilRSA, crypto.SHA512))
	})
	add("algorithm confusion", "ES256 header on the issuer's RSA signature", sig, func(e *hostileEnv) string {
		return hostileRehead(e.mint(nil), e.header("ES256", nil))
	})
	add("algorithm confusion", "ES256 signed by an attacker EC key, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("ES256", nil, hostileES256(e.evilEC))
	})
	add("algorithm confusion", "ES256 on a published RSA key without alg", sig, func(e *hostileEnv) string {
		return e.forge("ES256", map[string]any{"kid": e.trustedKID}, hostileES256(e.evilEC))
	})
	add("algorithm confusion", "ES256 psychic signature (r = s = 0)", sig, func(e *hostileEnv) string {
		return e.forge("ES256", nil, hostileFixed(make([]byte, 64)))
	})
	add("algorithm confusion", "EdDSA signed by an attacker key, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("EdDSA", nil, hostileEdDSA(e.evilEd))
	})
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		add("algorithm confusion", fmt.Sprintf("alg %q, empty signature", alg), malformed, func(e *hostileEnv) string {
			return e.forge(alg, nil, nil)
		})
	}
	add("algorithm confusion", `alg "none" keeping the issuer's signature`, sig, func(e *hostileEnv) string {
		return hostileRehead(e.mint(nil), e.header("none", nil))
	})
	add("algorithm confusion", "alg missing", sig, func(e *hostileEnv) string {
		return e.forge("", map[string]any{"alg": nil}, hostileRS256(e.evilRSA))
	})
	add("algorithm confusion", "alg missing, issuer's signature", sig, func(e *hostileEnv) string {
		return hostileRehead(e.mint(nil), e.header("", map[string]any{"alg": nil}))
	})
	for _, tc := range []struct {
		name string
		alg  any
	}{
		{"alg null", json.RawMessage("null")},
		{"alg a number", 256},
		{"alg a list", []string{"RS256"}},
		{"alg an object", map[string]any{"name": "RS256"}},
		{"alg empty", ""},
		{"alg RS1", "RS1"},
		{"alg ES256K", "ES256K"},
		{"alg RSA-OAEP (a JWE algorithm)", "RSA-OAEP"},
		{"alg dir (a JWE algorithm)", "dir"},
		{"alg A128KW", "A128KW"},
		{"alg rs256 (lower case)", "rs256"},
		{"alg with a trailing space", "RS256 "},
		{"alg with a NUL", "RS256\x00"},
	} {
		add("algorithm confusion", tc.name, sig, func(e *hostileEnv) string {
			return e.forge("", map[string]any{"alg": tc.alg}, hostileRS256(e.evilRSA))
		})
	}

	// Signature stripping and tampering on tokens the issuer signed.
	add("signature tampering", "signature stripped", malformed, func(e *hostileEnv) string {
		h, p, _ := hostileSplit(e.mint(nil))
		return h + "." + p + "."
	})
	add("signature tampering", "signature of another valid token", sig, func(e *hostileEnv) string {
		h, p, _ := hostileSplit(e.mint(map[string]any{"sub": "U2mallory"}))
		_, _, s := hostileSplit(e.mint(nil))
		return h + "." + p + "." + s
	})
	add("signature tampering", "escalated claims under the issuer's signature", sig, func(e *hostileEnv) string {
		h, _, s := hostileSplit(e.mint(map[string]any{"roles": []string{"viewer"}}))
		return h + "." + hostileB64(hostileJSON(e.claims(map[string]any{"roles": []string{"admin"}}))) + "." + s
	})
	add("signature tampering", "a bit flipped in the signature", sig, func(e *hostileEnv) string {
		h, p, s := hostileSplit(e.mint(nil))
		b, _ := base64.RawURLEncoding.DecodeString(s)
		b[100] ^= 1
		return h + "." + p + "." + hostileB64(b)
	})
	add("signature tampering", "signature one byte short", sig, func(e *hostileEnv) string {
		h, p, s := hostileSplit(e.mint(nil))
		b, _ := base64.RawURLEncoding.DecodeString(s)
		return h + "." + p + "." + hostileB64(b[1:])
	})
	add("signature tampering", "signature with a leading zero byte", sig, func(e *hostileEnv) string {
		h, p, s := hostileSplit(e.mint(nil))
		b, _ := base64.RawURLEncoding.DecodeString(s)
		return h + "." + p + "." + hostileB64(append([]byte{0}, b...))
	})
	add("signature tampering", "signature all zero", sig, func(e *hostileEnv) string {
		return e.forge("RS256", nil, hostileFixed(make([]byte, 256)))
	})
	add("signature tampering", "signature the integer 1", sig, func(e *hostileEnv) string {
		one := make([]byte, 256)
		one[255] = 1
		return e.forge("RS256", nil, hostileFixed(one))
	})
	add("signature tampering", "signature the modulus", sig, func(e *hostileEnv) string {
		return e.forge("RS256", nil, hostileFixed(e.victimPub.N.Bytes()))
	})
	add("signature tampering", "a real signature over other bytes", sig, func(e *hostileEnv) string {
		_, _, s := hostileSplit(e.mint(nil))
		return e.forge("RS256", nil, func([]byte) []byte { b, _ := base64.RawURLEncoding.DecodeString(s); return b })
	})

	// Base64url variants that must not decode.
	resegIn := func(category, name, reason string, edit func(h, p, s string) string) {
		add(category, name, reason, func(e *hostileEnv) string {
			return edit(hostileSplit(e.mint(nil)))
		})
	}
	reseg := func(name, reason string, edit func(h, p, s string) string) {
		resegIn("malformed base64", name, reason, edit)
	}
	reseg("padding on the header", malformed, func(h, p, s string) string { return h + "==." + p + "." + s })
	reseg("padding on the payload", malformed, func(h, p, s string) string { return h + "." + p + "=." + s })
	reseg("padding on the signature", malformed, func(h, p, s string) string { return h + "." + p + "." + s + "==" })
	reseg("padding inside the signature", malformed, func(h, p, s string) string { return h + "." + p + "." + s[:8] + "=" + s[8:] })
	add("malformed base64", "signature in the standard alphabet (+ and /)", malformed, func(e *hostileEnv) string {
		for i := 0; ; i++ {
			h, p, s := hostileSplit(e.mint(nil))
			if strings.ContainsAny(s, "-_") || i == 100 {
				b, _ := base64.RawURLEncoding.DecodeString(s)
				return h + "." + p + "." + base64.RawStdEncoding.EncodeToString(b)
			}
		}
	})
	add("malformed base64", "payload in the standard alphabet with padding", malformed, func(e *hostileEnv) string {
		h, _, s := hostileSplit(e.mint(nil))
		return h + "." + base64.StdEncoding.EncodeToString(append(hostileJSON(e.claims(nil)), ' ')) + "." + s
	})
	reseg("non-zero trailing bits in the signature", malformed, func(h, p, s string) string {
		// 256 bytes leave 4 unused bits in the last character.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		i := strings.IndexByte(alphabet, s[len(s)-1])
		return h + "." + p + "." + s[:len(s)-1] + string(alphabet[i|1])
	})
	reseg("space inside the signature", malformed, func(h, p, s string) string { return h + "." + p + "." + s[:10] + " " + s[10:] })
	reseg("tab inside the signature", malformed, func(h, p, s string) string { return h + "." + p + "." + s[:10] + "\t" + s[10:] })
	reseg("line break inside the header", malformed, func(h, p, s string) string {
		return h[:6] + "\r\n" + h[6:] + "." + p + "." + s
	})
	reseg("NUL inside the payload", malformed, func(h, p, s string) string { return h + "." + p[:10] + "\x00" + p[10:] + "." + s })
	reseg("invalid character ! in the header", malformed, func(h, p, s string) string { return "!" + h + "." + p + "." + s })
	reseg("percent-encoded payload", malformed, func(h, p, s string) string { return h + "." + "%65%79" + p + "." + s })
	reseg("non-ASCII letter in the payload", malformed, func(h, p, s string) string { return h + "." + p[:4] + "é" + p[4:] + "." + s })
	reseg("header not UTF-8 once decoded", malformed, func(_, p, s string) string { return hostileB64([]byte{0xff, 0xfe, '{', '}'}) + "." + p + "." + s })
	reseg("empty header", malformed, func(_, p, s string) string { return "." + p + "." + s })
	reseg("empty payload (detached content)", malformed, func(h, _, s string) string { return h + ".." + s })

	// Too few or too many segments, and JWE.
	resegIn("segments", "one segment", malformed, func(h, _, _ string) string { return h })
	resegIn("segments", "two segments", malformed, func(h, p, _ string) string { return h + "." + p })
	resegIn("segments", "four segments", malformed, func(h, p, s string) string { return h + "." + p + "." + s + "." + s })
	resegIn("segments", "trailing dot", malformed, func(h, p, s string) string { return h + "." + p + "." + s + "." })
	add("segments", "dots only", malformed, func(*hostileEnv) string { return "...." })
	add("segments", "empty token", malformed, func(*hostileEnv) string { return "" })
	add("segments", "JWE: five segments with enc, victim kid", malformed, func(e *hostileEnv) string {
		h := hostileB64(hostileJSON(map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM", "kid": e.victimKID}))
		return h + "." + hostileB64(make([]byte, 256)) + "." + hostileB64(make([]byte, 12)) + "." + hostileB64(hostileJSON(e.claims(nil))) + "." + hostileB64(make([]byte, 16))
	})
	add("segments", "JWE: alg dir, empty encrypted key", malformed, func(e *hostileEnv) string {
		h := hostileB64(hostileJSON(map[string]any{"alg": "dir", "enc": "A128GCM"}))
		return h + ".." + hostileB64(make([]byte, 12)) + "." + hostileB64(hostileJSON(e.claims(nil))) + "." + hostileB64(make([]byte, 16))
	})
	add("segments", "JWS JSON serialization (flattened) as the token", malformed, func(e *hostileEnv) string {
		h, p, s := hostileSplit(e.mint(nil))
		return string(hostileJSON(map[string]string{"protected": h, "payload": p, "signature": s}))
	})
	add("segments", "JWS JSON serialization, base64url as one segment", malformed, func(e *hostileEnv) string {
		h, p, s := hostileSplit(e.mint(nil))
		return hostileB64(hostileJSON(map[string]any{"payload": p, "signatures": []any{map[string]string{"protected": h, "signature": s}}}))
	})
	add("segments", "nested JWT (cty JWT): a real token as a JSON string payload", malformed, func(e *hostileEnv) string {
		return e.signRaw(hostileJSON(e.header("RS256", map[string]any{"cty": "JWT"})), []byte(`"`+e.mint(nil)+`"`), hostileRS256(e.evilRSA))
	})
	add("segments", "a real token as the payload of another", malformed, func(e *hostileEnv) string {
		return e.signRaw(hostileJSON(e.header("RS256", map[string]any{"cty": "JWT"})), []byte(e.mint(nil)), hostileRS256(e.evilRSA))
	})

	// Malformed and non-object JSON.
	rawHeader := func(name, reason, header string) {
		add("malformed JSON", "header "+name, reason, func(e *hostileEnv) string {
			return e.signRaw([]byte(strings.ReplaceAll(header, "KID", e.victimKID)), hostileJSON(e.claims(nil)), hostileRS256(e.evilRSA))
		})
	}
	rawHeader("an array", malformed, `["RS256","KID"]`)
	rawHeader("a string", malformed, `"RS256"`)
	rawHeader("a number", malformed, `256`)
	rawHeader("true", malformed, `true`)
	rawHeader("null", sig, `null`)
	rawHeader("truncated", malformed, `{"alg":"RS256","kid":"KID"`)
	rawHeader("with trailing data", malformed, `{"alg":"RS256","kid":"KID"}x`)
	rawHeader("two objects", malformed, `{"alg":"none"}{"alg":"RS256","kid":"KID"}`)
	rawHeader("with a byte-order mark", malformed, "\ufeff"+`{"alg":"RS256","kid":"KID"}`)
	rawHeader("with single quotes", malformed, `{'alg':'RS256','kid':'KID'}`)
	rawHeader("with a comment", malformed, `{"alg":"RS256",/*x*/"kid":"KID"}`)
	rawHeader("empty", malformed, ``)
	rawClaims := func(name, reason, claims string) {
		add("malformed JSON", "claims "+name, reason, func(e *hostileEnv) string {
			return e.forgeClaims(claims)
		})
	}
	rawClaims("an array", malformed, `[{"sub":"U2alice"}]`)
	rawClaims("a string", malformed, `"U2alice"`)
	rawClaims("a number", malformed, `1`)
	rawClaims("false", malformed, `false`)
	rawClaims("null", sig, `null`)
	rawClaims("truncated", malformed, `{"sub":"U2alice","exp":`)
	rawClaims("with a trailing comma", malformed, `{"sub":"U2alice",}`)
	rawClaims("with NaN", malformed, `{"exp":NaN}`)
	rawClaims("with a number beyond float64", malformed, `{"exp":1e999}`)
	rawClaims("with trailing data", malformed, `{"sub":"U2alice"}{"sub":"U2admin"}`)
	rawClaims("with an unpaired surrogate escape", sig, `{"sub":"\ud800"}`)
	add("malformed JSON", "claims null, issuer-signed", missing, func(e *hostileEnv) string {
		return e.trustedRaw(`null`)
	})
	add("malformed JSON", "claims an empty object, issuer-signed", missing, func(e *hostileEnv) string {
		return e.trustedRaw(`{}`)
	})

	// Deep nesting and size, within and beyond the 16 KiB cap.
	add("deep nesting", "5,000 nested arrays in a claim", sig, func(e *hostileEnv) string {
		return e.forgeClaims(e.perfectClaimsJSON() + `,"x":` + hostileNested(5000, "[", "1", "]") + `}`)
	})
	add("deep nesting", "1,500 nested objects in a claim", sig, func(e *hostileEnv) string {
		return e.forgeClaims(e.perfectClaimsJSON() + `,"x":` + hostileNested(1500, `{"a":`, "1", "}") + `}`)
	})
	add("deep nesting", "5,000 nested arrays in the header", sig, func(e *hostileEnv) string {
		h := fmt.Sprintf(`{"alg":"RS256","kid":%q,"x":%s}`, e.victimKID, hostileNested(5000, "[", "", "]"))
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.evilRSA))
	})
	add("deep nesting", "5,000 nested arrays as the tenants claim", sig, func(e *hostileEnv) string {
		return e.forgeClaims(e.perfectClaimsJSON() + `,"tenants":` + hostileNested(5000, "[", "", "]") + `}`)
	})
	add("deep nesting", "20,000 nested arrays (over the size cap)", "too_large", func(e *hostileEnv) string {
		return e.forgeClaims(e.perfectClaimsJSON() + `,"x":` + hostileNested(20000, "[", "", "]") + `}`)
	})
	add("size", "15 KiB claim just under the cap", sig, func(e *hostileEnv) string {
		return e.signRaw(hostileJSON(e.header("RS256", nil)),
			hostileJSON(e.claims(map[string]any{"pad": strings.Repeat("x", 11<<10)})), hostileRS256(e.evilRSA))
	})
	add("size", "1,000 claims", sig, func(e *hostileEnv) string {
		var b strings.Builder
		b.WriteString(e.perfectClaimsJSON())
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&b, `,"c%d":%d`, i, i)
		}
		b.WriteString("}")
		return e.forgeClaims(b.String())
	})
	add("size", "500 copies of one claim", sig, func(e *hostileEnv) string {
		return e.forgeClaims(e.perfectClaimsJSON() + strings.Repeat(`,"sub":"U2admin"`, 500) + `}`)
	})
	add("size", "1,500 escaped NULs", sig, func(e *hostileEnv) string {
		return e.forgeClaims(e.perfectClaimsJSON() + `,"x":"` + strings.Repeat(`\u0000`, 1500) + `"}`)
	})
	add("size", "one byte over the cap", "too_large", func(e *hostileEnv) string {
		tok := e.mint(map[string]any{"pad": strings.Repeat("x", 12<<10)})
		for len(tok) <= descope.DefaultMaxTokenBytes {
			tok += "A"
		}
		return tok[:descope.DefaultMaxTokenBytes+1]
	})

	// Claims of the wrong JSON type on tokens the issuer signed: the
	// signature is good, the claim check must still refuse.
	typed := func(name, reason string, extra map[string]any) {
		add("wrong claim type", name, reason, func(e *hostileEnv) string { return e.mint(extra) })
	}
	typed(`exp a string "9999999999"`, claimType, map[string]any{"exp": "9999999999"})
	typed("exp a list", claimType, map[string]any{"exp": []int64{9999999999}})
	typed("exp an object", claimType, map[string]any{"exp": map[string]any{"$date": 9999999999}})
	typed("exp a boolean", claimType, map[string]any{"exp": true})
	typed("exp zero", missing, map[string]any{"exp": 0})
	typed("exp negative", "expired", map[string]any{"exp": -1})
	typed("iat a string", claimType, map[string]any{"iat": "0"})
	typed("iat a list", claimType, map[string]any{"iat": []int{0}})
	typed("nbf a string", claimType, map[string]any{"nbf": "0"})
	typed("nbf an object", claimType, map[string]any{"nbf": map[string]any{}})
	add("wrong claim type", "iss a list holding the issuer", issuer, func(e *hostileEnv) string {
		return e.mint(map[string]any{"iss": []string{e.issuer}})
	})
	typed("iss a number", issuer, map[string]any{"iss": 1})
	typed("aud a number", missing, map[string]any{"aud": 12345})
	typed("aud an object", missing, map[string]any{"aud": map[string]any{"aud": hostileResource}})
	typed("aud an empty list", missing, map[string]any{"aud": []string{}})
	typed("aud a list holding a number", claimType, map[string]any{"aud": []any{hostileResource, 1}})
	typed("aud a nested list", claimType, map[string]any{"aud": []any{[]string{hostileResource}}})
	typed("sub a number", missing, map[string]any{"sub": 42})
	typed("sub a list", missing, map[string]any{"sub": []string{"U2alice"}})
	typed("sub empty", missing, map[string]any{"sub": ""})
	typed("scope a list", claimType, map[string]any{"scope": []string{hostileScope}})
	typed("scope a number", claimType, map[string]any{"scope": 1})
	typed("scp an object", claimType, map[string]any{"scope": nil, "scp": map[string]any{hostileScope: true}})
	typed("scp a list holding a number", claimType, map[string]any{"scope": nil, "scp": []any{hostileScope, 1}})
	typed("roles an object", claimType, map[string]any{"roles": map[string]any{"admin": true}})
	typed("roles a list holding a number", claimType, map[string]any{"roles": []any{"admin", 1}})
	typed("permissions a string", claimType, map[string]any{"permissions": "all"})
	typed("tenants a list", claimType, map[string]any{"tenants": []string{"T1"}})
	typed("tenants holding a string", claimType, map[string]any{"tenants": map[string]any{"T1": "admin"}})
	typed("tenant roles a string", claimType, map[string]any{"tenants": map[string]any{"T1": map[string]any{"roles": "admin"}}})
	typed("dct a number", claimType, map[string]any{"dct": 1})
	typed("dct a list", claimType, map[string]any{"dct": []string{"T1"}})
	typed("azp a number", claimType, map[string]any{"azp": 1})
	typed("client_id an object", claimType, map[string]any{"azp": nil, "client_id": map[string]any{}})

	// Duplicate members: encoding/json keeps the last. A token whose last
	// value is bad is refused although its first value is good.
	dup := func(name, reason, members string) {
		add("duplicate claims", name, reason, func(e *hostileEnv) string {
			return e.trustedRaw(e.perfectClaimsJSON() + strings.ReplaceAll(members, "ISSUER", e.issuer) + "}")
		})
	}
	dup("iss twice, the last another issuer", issuer, `,"iss":"ISSUER","iss":"https://evil.example/v1/apps/P2evil"`)
	dup("aud twice, the last another audience", audience, `,"aud":"`+hostileResource+`","aud":"https://other.example/mcp"`)
	dup("exp twice, the last in the past", "expired", `,"exp":9999999999,"exp":1`)
	dup("sub twice, the last a number", missing, `,"sub":"U2alice","sub":5`)
	dup("drn twice, the last a refresh token", "refresh_token", `,"drn":"DS","drn":"DSR"`)
	dup("scope twice, the last a list", claimType, `,"scope":"mcp:tools","scope":["mcp:tools"]`)
	add("duplicate claims", "iss only in upper case (map keys are case-sensitive)", issuer, func(e *hostileEnv) string {
		return e.trustedRaw(e.perfectClaimsJSON("iss") + fmt.Sprintf(`,"ISS":%q,"Iss":%q}`, e.issuer, e.issuer))
	})
	add("duplicate claims", "header alg twice, the last none", sig, func(e *hostileEnv) string {
		h := fmt.Sprintf(`{"alg":"RS256","kid":%q,"alg":"none"}`, e.trustedKID)
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.trusted))
	})
	add("duplicate claims", "header kid twice, the last unknown", unknown, func(e *hostileEnv) string {
		h := fmt.Sprintf(`{"alg":"RS256","kid":%q,"kid":"evil-2"}`, e.trustedKID)
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.trusted))
	})

	// Non-ASCII look-alikes and invisible characters in the checked claims.
	iss := func(name string, edit func(string) string) {
		add("non-ASCII", name, issuer, func(e *hostileEnv) string { return e.mint(map[string]any{"iss": edit(e.issuer)}) })
	}
	iss("homoglyph issuer (Cyrillic а in apps)", func(s string) string { return strings.Replace(s, "/apps/", "/\u0430pps/", 1) })
	iss("homoglyph issuer (Cyrillic о in the host)", func(s string) string { return strings.Replace(s, "127.0.0.1", "127.0.0.1.dеscоpe.com", 1) })
	iss("issuer with a right-to-left override", func(s string) string { return s + "\u202e" })
	iss("issuer with a zero-width space", func(s string) string { return strings.Replace(s, "/v1/", "/v1\u200b/", 1) })
	iss("issuer followed by NUL", func(s string) string { return s + "\x00" })
	iss("issuer, NUL, then another host", func(s string) string { return s + "\x00.evil.example" })
	iss("fullwidth issuer scheme", func(s string) string { return "ｈｔｔｐ" + strings.TrimPrefix(s, "http") })
	iss("issuer in NFD-decomposable form", func(s string) string { return s + "e\u0301" })
	add("non-ASCII", "homoglyph audience (Cyrillic с in mcp)", audience, func(e *hostileEnv) string {
		return e.mint(map[string]any{"aud": []string{strings.Replace(hostileResource, "/mcp", "/m\u0441p", 1)}})
	})
	add("non-ASCII", "audience followed by NUL", audience, func(e *hostileEnv) string {
		return e.mint(map[string]any{"aud": []string{hostileResource + "\x00"}})
	})
	add("non-ASCII", "invalid UTF-8 in the issuer, issuer-signed", issuer, func(e *hostileEnv) string {
		return e.trustedRaw(e.perfectClaimsJSON("iss") + `,"iss":"` + e.issuer + "\xff\xfe" + `"}`)
	})
	add("non-ASCII", "overlong UTF-8 in the issuer, issuer-signed", issuer, func(e *hostileEnv) string {
		return e.trustedRaw(e.perfectClaimsJSON("iss") + `,"iss":"` + e.issuer + "\xc0\xae" + `"}`)
	})
	add("non-ASCII", "issuer with an escaped NUL, issuer-signed", issuer, func(e *hostileEnv) string {
		return e.trustedRaw(e.perfectClaimsJSON("iss") + `,"iss":"` + e.issuer + `\u0000"}`)
	})
	add("non-ASCII", "invalid UTF-8 in the kid", unknown, func(e *hostileEnv) string {
		h := `{"alg":"RS256","kid":"` + e.victimKID + "\xff" + `"}`
		return e.signRaw([]byte(h), hostileJSON(e.claims(nil)), hostileRS256(e.evilRSA))
	})
	add("non-ASCII", "UTF-8, RTL override and NUL in claims, attacker-signed", sig, func(e *hostileEnv) string {
		return e.signRaw(hostileJSON(e.header("RS256", nil)), hostileJSON(e.claims(map[string]any{
			"sub": "U2al\u202eice", "name": "Ådmin\x00", "roles": []string{"аdmin"},
		})), hostileRS256(e.evilRSA))
	})

	// Right algorithm, key not in the key set.
	add("foreign keys", "attacker RSA-2048 key, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("RS256", nil, hostileRS256(e.evilRSA))
	})
	add("foreign keys", "attacker RSA-2048 key, its own kid", unknown, func(e *hostileEnv) string {
		return e.forge("RS256", map[string]any{"kid": "SK2attacker00000000000000000"}, hostileRS256(e.evilRSA))
	})
	add("foreign keys", "attacker RSA-1024 key, victim kid", sig, func(e *hostileEnv) string {
		return e.forge("RS256", nil, hostileRS256(e.evilSmall))
	})
	add("foreign keys", "another Descope project's token, its kid, our claims", unknown, func(e *hostileEnv) string {
		return e.other.Mint(map[string]any{"iss": e.issuer, "aud": []string{hostileResource}, "scope": hostileScope})
	})
	add("foreign keys", "another Descope project's key, victim kid", sig, func(e *hostileEnv) string {
		return e.other.MintWithHeader(map[string]any{"kid": e.victimKID}, map[string]any{"iss": e.issuer, "aud": []string{hostileResource}, "scope": hostileScope})
	})
	add("foreign keys", "another Descope project's token as it was issued", unknown, func(e *hostileEnv) string {
		return e.other.Mint(map[string]any{"aud": []string{hostileResource}, "scope": hostileScope})
	})
	return cases
}

// forgeClaims signs exact claims bytes with the attacker's key under a
// header naming the victim's kid.
func (e *hostileEnv) forgeClaims(claims string) string {
	return e.signRaw(hostileJSON(e.header("RS256", nil)), []byte(claims), hostileRS256(e.evilRSA))
}

func TestHostileTokens(t *testing.T) {
	e := newHostileEnv(t)
	cases := hostileCases()
	internals := []string{
		e.ds.URL(), e.other.URL(), e.keys.URL, e.evil.URL, strings.TrimPrefix(e.keys.URL, "http://"),
		"kid", e.victimKID, e.trustedKID, "crypto/", "rsa", "jwt", "jwk", "malformed", "signature", "segment",
		"base64", "json", "claim", "keyfunc", "unknown_key", "no_key_id", "critical", "verification",
	}
	exact := map[string]bool{"Content-Type": true, "Cache-Control": true, "Www-Authenticate": true}
	allowedHeaders := map[string]bool{"Content-Type": true, "Cache-Control": true, "Www-Authenticate": true, "Date": true, "Content-Length": true,
		"Connection": true} // "close" when the body was left unread
	categories := map[string]int{}
	seen := map[string]bool{}
	for _, tc := range cases {
		categories[tc.category]++
		require.False(t, seen[tc.category+"/"+tc.name], "duplicate case %q", tc.name)
		seen[tc.category+"/"+tc.name] = true
		t.Run(tc.category+"/"+tc.name, func(t *testing.T) {
			tok := tc.token(e)
			ctx := context.Background()

			claims, err := e.p.VerifyToken(ctx, tok)
			require.Error(t, err, "accepted: %+v", claims)
			var te *auth.TokenError
			require.ErrorAs(t, err, &te)
			assert.ErrorIs(t, err, auth.ErrInvalidToken, "keys are loaded: never unavailable")
			assert.Equal(t, tc.reason, te.Reason, "refused for %v", err)

			_, looseErr := e.loose.VerifyToken(ctx, tok)
			assert.ErrorIs(t, looseErr, auth.ErrInvalidToken, "with every asymmetric algorithm allowed")

			status, header, body := e.send(t, tok)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, hostileChallenge, header.Get("WWW-Authenticate"))
			assert.Equal(t, hostileBody, body)
			needles := append([]string{err.Error(), te.Reason}, internals...)
			if te.Err != nil {
				needles = append(needles, te.Err.Error())
			}
			assert.Equal(t, "application/json", header.Get("Content-Type"))
			assert.Equal(t, "no-store", header.Get("Cache-Control"))
			for name, values := range header {
				assert.True(t, allowedHeaders[name], "unexpected header %s", name)
				for _, v := range values {
					if exact[name] {
						continue // compared exactly above
					}
					for _, n := range needles {
						assert.NotContains(t, strings.ToLower(v), strings.ToLower(n), "header %s", name)
					}
				}
			}
		})
	}
	assert.Zero(t, e.evilHits.Load(), "a key or certificate URL from a token header was fetched")
	assert.Zero(t, e.panics.Load(), "the handler panicked")

	names := make([]string, 0, len(categories))
	for c := range categories {
		names = append(names, c)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, c := range names {
		fmt.Fprintf(&b, "\n  %-22s %3d", c, categories[c])
	}
	t.Logf("%d hostile tokens (%d over the wire, %d in process because net/http cannot carry them):%s",
		len(cases), e.wire, e.inProcess, b.String())
}

// TestHostileLineBreaksInToken: encoding/base64 skips CR and LF, so a valid
// token with line breaks in its signature segment decodes to the same
// signature over the same signed bytes. Over HTTP the middleware's b64token
// check stops it, but VerifyToken itself accepts the altered string: one
// token, many accepted spellings (each its own cache entry).
func TestHostileLineBreaksInToken(t *testing.T) {
	e := newHostileEnv(t)
	tok := e.mint(nil)
	h, p, s := hostileSplit(tok)
	variants := map[string]string{
		"LF inside the signature":   h + "." + p + "." + s[:20] + "\n" + s[20:],
		"CRLF inside the signature": h + "." + p + "." + s[:20] + "\r\n" + s[20:],
		"LF after the signature":    tok + "\n",
		"CR before the signature":   h + "." + p + ".\r" + s,
	}
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			// The middleware refuses them whatever VerifyToken does.
			status, _, body := e.send(t, v)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, hostileBody, body)

			// encoding/base64 skips CR and LF, so jwt/v5 alone would
			// accept these: VerifyToken must refuse them itself.
			_, err := e.p.VerifyToken(context.Background(), v)
			var te *auth.TokenError
			require.ErrorAs(t, err, &te, "a non-canonical spelling of a valid token was accepted")
			assert.Equal(t, "malformed", te.Reason)
		})
	}
}

// TestHostileDocumentedAcceptances pins down what is accepted on purpose, so
// that a change in it is noticed: everything here is signed by the issuer,
// which an attacker cannot do.
func TestHostileDocumentedAcceptances(t *testing.T) {
	e := newHostileEnv(t)
	tests := []struct {
		name  string
		token func() string
		sub   string
	}{
		{"control: the claims every attacker case signs, signed by the issuer", func() string {
			return e.trustedRaw(string(hostileJSON(e.claims(nil))))
		}, "U2alice"},
		{"control: a token the fake Descope minted", func() string { return e.mint(nil) }, "U2alice"},
		{"duplicate sub: encoding/json keeps the last value", func() string {
			return e.trustedRaw(e.perfectClaimsJSON("sub") + `,"sub":"U2first","sub":"U2last"}`)
		}, "U2last"},
		{"duplicate iss: a bad first value is overridden by a good last one", func() string {
			return e.trustedRaw(e.perfectClaimsJSON("iss") + `,"iss":"https://evil.example","iss":"` + e.issuer + `"}`)
		}, "U2alice"},
		{"5,000 nested arrays in a claim: no stack overflow", func() string {
			return e.trustedRaw(e.perfectClaimsJSON() + `,"x":` + hostileNested(5000, "[", "1", "]") + `}`)
		}, "U2alice"},
		{"UTF-8, RTL override and NUL in sub are data, not syntax", func() string {
			return e.mint(map[string]any{"sub": "U2\u202eecila\x00"})
		}, "U2\u202eecila\x00"},
		{"escaped slashes in the issuer decode to the issuer", func() string {
			return e.trustedRaw(e.perfectClaimsJSON("iss") + `,"iss":"` + strings.ReplaceAll(e.issuer, "/", `\/`) + `"}`)
		}, "U2alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token()
			c, err := e.p.VerifyToken(context.Background(), tok)
			require.NoError(t, err)
			assert.Equal(t, tc.sub, c.Subject)
			if hostilePrintable(tok) {
				status, _, body := e.send(t, tok)
				assert.Equal(t, http.StatusOK, status)
				assert.Equal(t, hostileOK, body)
			}
		})
	}
}

// TestHostileDeepNestingPastTheSizeCap lifts the token size cap to 1 MiB to
// reach encoding/json's nesting limit (10,000 levels): deeper documents are
// refused as malformed, before any signature check, and nothing overflows
// the stack. Up to the limit, nesting signed by the issuer is accepted.
func TestHostileDeepNestingPastTheSizeCap(t *testing.T) {
	e := newHostileEnv(t)
	big := e.provider(t, descope.Config{MaxTokenBytes: 1 << 20})
	claimsAt := func(depth int) string {
		// The claims object is one level; the claim adds depth-1 more.
		return e.perfectClaimsJSON() + `,"x":` + hostileNested(depth-1, "[", "", "]") + `}`
	}
	tests := []struct {
		name   string
		token  string
		reason string // "" for accepted
	}{
		{"10,000 levels, issuer-signed", e.trustedRaw(claimsAt(10_000)), ""},
		{"10,001 levels, issuer-signed", e.trustedRaw(claimsAt(10_001)), "malformed"},
		{"10,000 levels, attacker-signed", e.forgeClaims(claimsAt(10_000)), "signature"},
		{"200,000 levels, attacker-signed", e.forgeClaims(claimsAt(200_000)), "malformed"},
		{"100,000 levels of objects, attacker-signed", e.forgeClaims(e.perfectClaimsJSON() + `,"x":` + hostileNested(100_000, `{"a":`, "1", "}") + `}`), "malformed"},
		{"200,000 levels in the header, attacker-signed", e.signRaw([]byte(`{"alg":"RS256","x":`+hostileNested(200_000, "[", "", "]")+`}`), hostileJSON(e.claims(nil)), hostileRS256(e.evilRSA)), "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.LessOrEqual(t, len(tc.token), 1<<20)
			c, err := big.VerifyToken(context.Background(), tc.token)
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, "U2alice", c.Subject)
				return
			}
			var te *auth.TokenError
			require.ErrorAs(t, err, &te)
			assert.ErrorIs(t, err, auth.ErrInvalidToken)
			assert.Equal(t, tc.reason, te.Reason, "refused for %v", err)
			_, err = e.p.VerifyToken(context.Background(), tc.token)
			assert.ErrorIs(t, err, auth.ErrInvalidToken, "the default cap")
		})
	}
}
