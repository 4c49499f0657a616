package descope_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
	"github.com/mcp-go-contrib/descope/auth/dpop"
)

// The DPoP challenges of an endpoint with RequiredScopes mcp:tools and
// proof algorithms ES256, ES384 and EdDSA.
const (
	dpopAlgs         = `algs="ES256 ES384 EdDSA"`
	tail             = `scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	bearerPlain      = `Bearer ` + tail
	dpopPlain        = `DPoP ` + dpopAlgs + `, ` + tail
	descInvalidProof = "The DPoP proof is missing, invalid, or does not match this request and access token."
	descUseNonce     = "Send the request again with a DPoP proof that carries the nonce in the DPoP-Nonce header."
	descBoundBearer  = "The access token is bound to a key: send it with the DPoP scheme and a DPoP proof."
	descRequired     = "This endpoint accepts only DPoP-bound access tokens, sent with the DPoP scheme and a DPoP proof."
	descInvalidTok   = "The access token is invalid, expired, or not issued for this server."
	descScope        = "The access token does not grant the scope this request requires."
	bodyBadProof     = `{"error":"invalid_dpop_proof","error_description":"` + descInvalidProof + `"}`
	bodyUseNonce     = `{"error":"use_dpop_nonce","error_description":"` + descUseNonce + `"}`
	bodyBoundBearer  = `{"error":"invalid_token","error_description":"` + descBoundBearer + `"}`
	bodyRequired     = `{"error":"invalid_token","error_description":"` + descRequired + `"}`
)

func withError(scheme, code, desc string) string {
	params := `error="` + code + `", error_description="` + desc + `", ` + tail
	if scheme == "DPoP" {
		return "DPoP " + dpopAlgs + ", " + params
	}
	return "Bearer " + params
}

// dpopEnv is a fake Descope, a provider in one DPoP mode, and an endpoint
// that answers with the caller's subject and key thumbprint. Refusal
// reasons are captured from the middleware's debug log.
type dpopEnv struct {
	ds      *descopetest.Server
	srv     *httptest.Server
	claims  atomic.Pointer[auth.Claims] // of the last request let in
	mu      sync.Mutex
	reasons []string
}

func newDPoPEnv(t *testing.T, d auth.DPoP) *dpopEnv {
	t.Helper()
	ds := descopetest.NewServer()
	t.Cleanup(ds.Close)
	return newDPoPEnvWith(t, ds, d)
}

// newDPoPEnvWith puts another endpoint in front of the same fake Descope,
// as a second replica would be.
func newDPoPEnvWith(t *testing.T, ds *descopetest.Server, d auth.DPoP) *dpopEnv {
	t.Helper()
	e := &dpopEnv{ds: ds}
	if d.Algorithms == nil {
		d.Algorithms = []string{"ES256", "ES384", "EdDSA"}
	}
	p, err := descope.New(descope.Config{
		WellKnownURL: e.ds.WellKnownURL(), ServerURL: "https://mcp.example.com",
		RequiredScopes: []string{"mcp:tools"}, DPoP: d,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.ClaimsFromContext(r.Context())
		e.claims.Store(c)
		_, _ = io.WriteString(w, c.Subject+" "+c.KeyThumbprint)
	})
	log := slog.New(reasonHandler{e})
	e.srv = httptest.NewServer(auth.Handler(p, echo, auth.WithLogger(log)))
	t.Cleanup(e.srv.Close)
	return e
}

// reasonHandler records the reason of each refusal the middleware logs.
type reasonHandler struct{ e *dpopEnv }

func (h reasonHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h reasonHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h reasonHandler) WithGroup(string) slog.Handler            { return h }
func (h reasonHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			h.e.mu.Lock()
			h.e.reasons = append(h.e.reasons, a.Value.String())
			h.e.mu.Unlock()
		}
		return true
	})
	return nil
}

func (e *dpopEnv) lastReason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.reasons) == 0 {
		return ""
	}
	return e.reasons[len(e.reasons)-1]
}

// token mints an access token for resourceURL with scope mcp:tools, bound
// to key when key is not nil.
func (e *dpopEnv) token(t *testing.T, key *ecdsa.PrivateKey, extra map[string]any) string {
	t.Helper()
	claims := map[string]any{"aud": []string{resourceURL}, "scope": "mcp:tools"}
	if key != nil {
		claims["cnf"] = map[string]any{"jkt": thumbprint(t, key)}
	}
	for k, v := range extra {
		claims[k] = v
	}
	return e.ds.Mint(claims)
}

type dpopRequest struct {
	method, path string
	auth         string
	proofs       []string
	header       map[string]string
}

func (e *dpopEnv) send(t *testing.T, r dpopRequest) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/mcp"
	}
	req, err := http.NewRequest(r.method, e.srv.URL+r.path, strings.NewReader(`{}`))
	require.NoError(t, err)
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	for _, p := range r.proofs {
		req.Header.Add("DPoP", p)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func newECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	return k
}

func thumbprint(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	s, err := dpop.Thumbprint(k.Public())
	require.NoError(t, err)
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64(sum[:])
}

func ecJWK(k *ecdsa.PublicKey) map[string]any {
	size := (k.Curve.Params().BitSize + 7) / 8
	raw, _ := k.Bytes() // uncompressed: 0x04 || X || Y
	return map[string]any{"kty": "EC", "crv": k.Curve.Params().Name,
		"x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
}

// forged is a proof under construction: every member can be edited before
// it is signed (ES256 with key, unless sign is replaced).
type forged struct {
	header, claims map[string]any
	key            *ecdsa.PrivateKey
	sign           func(input string) []byte
}

func newForged(key *ecdsa.PrivateKey, method, url, token string) *forged {
	f := &forged{
		header: map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(&key.PublicKey)},
		claims: map[string]any{"jti": rand.Text(), "htm": method, "htu": url, "iat": time.Now().Unix()},
		key:    key,
	}
	if token != "" {
		f.claims["ath"] = ath(token)
	}
	return f
}

func (f *forged) encode(t *testing.T) string {
	t.Helper()
	h, err := json.Marshal(f.header)
	require.NoError(t, err)
	c, err := json.Marshal(f.claims)
	require.NoError(t, err)
	input := b64(h) + "." + b64(c)
	var sig []byte
	if f.sign != nil {
		sig = f.sign(input)
	} else {
		digest := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, f.key, digest[:])
		require.NoError(t, err)
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64(sig)
}

// proof is a good proof for a POST to the MCP endpoint.
func proof(t *testing.T, key *ecdsa.PrivateKey, token string, edit func(*forged)) string {
	t.Helper()
	f := newForged(key, http.MethodPost, resourceURL, token)
	if edit != nil {
		edit(f)
	}
	return f.encode(t)
}

func TestDPoPAccepted(t *testing.T) {
	e := newDPoPEnv(t, auth.DPoP{})
	keyA := newECKey(t, elliptic.P256())
	tokA := e.token(t, keyA, nil)
	want := e.ds.User().Subject + " " + thumbprint(t, keyA)

	tests := []struct {
		name string
		req  func(t *testing.T) dpopRequest
		want string
	}{
		{"a proof by the token's key", func(t *testing.T) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, nil)}}
		}, want},
		{"scheme in another case", func(t *testing.T) dpopRequest {
			return dpopRequest{auth: "dpop " + tokA, proofs: []string{proof(t, keyA, tokA, nil)}}
		}, want},
		{"htu whose query differs from the request's", func(t *testing.T) dpopRequest {
			return dpopRequest{path: "/mcp?session=mine", auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) {
				f.claims["htu"] = resourceURL + "?session=other"
			})}}
		}, want},
		{"htu spelled with the default port and another case", func(t *testing.T) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) {
				f.claims["htu"] = "HTTPS://MCP.EXAMPLE.COM:443/mcp"
			})}}
		}, want},
		{"GET stream with a GET proof", func(t *testing.T) dpopRequest {
			return dpopRequest{method: http.MethodGet, auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) {
				f.claims["htm"] = http.MethodGet
			})}}
		}, want},
		{"iat four minutes old", func(t *testing.T) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) {
				f.claims["iat"] = time.Now().Add(-4 * time.Minute).Unix()
			})}}
		}, want},
		{"a bearer token, with no binding", func(t *testing.T) dpopRequest {
			return dpopRequest{auth: "Bearer " + e.token(t, nil, nil)}
		}, e.ds.User().Subject + " "},
		{"a bearer token with a stray DPoP header", func(t *testing.T) dpopRequest {
			return dpopRequest{auth: "Bearer " + e.token(t, nil, nil), proofs: []string{"not even a proof"}}
		}, e.ds.User().Subject + " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.send(t, tt.req(t))
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s (reason %s)", body, e.lastReason())
			assert.Equal(t, tt.want, body)
			assert.Empty(t, resp.Header.Values("DPoP-Nonce"), "nonces are off")
		})
	}
}

// TestDPoPHostile is the hostile table: each request carries a proof, or a
// credential, that must be refused, and is answered with the exact status,
// challenges and body, for the expected reason, with nothing on the wire
// taken from the request or from the library's errors. The caller whose
// token and proofs the attacker holds still gets in afterwards.
func TestDPoPHostile(t *testing.T) {
	envs := map[string]*dpopEnv{
		"allowed":  newDPoPEnv(t, auth.DPoP{}),
		"required": newDPoPEnv(t, auth.DPoP{Mode: auth.DPoPRequired}),
		"disabled": newDPoPEnv(t, auth.DPoP{Mode: auth.DPoPDisabled}),
		"nonces":   newDPoPEnv(t, auth.DPoP{Nonces: true}),
	}
	keyA, keyB := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	badProof := []string{withError("Bearer", "", ""), withError("DPoP", "invalid_dpop_proof", descInvalidProof)}
	badProof[0] = bearerPlain
	badDPoPToken := []string{bearerPlain, withError("DPoP", "invalid_token", descInvalidTok)}
	type attack struct {
		env, name string
		// req builds the request from A's bound token; it may send
		// requests of its own first (a replay sends the proof once).
		req       func(t *testing.T, e *dpopEnv, tokA string) dpopRequest
		status    int
		challenge []string
		body      string
		reason    string
		nonce     bool // a DPoP-Nonce header is expected
	}
	dpopReq := func(edit func(*forged)) func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
		return func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, edit)}}
		}
	}
	invalid := func(name, reason string, edit func(*forged)) attack {
		return attack{env: "allowed", name: name, req: dpopReq(edit), status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_" + reason}
	}
	attacks := []attack{
		invalid("typ missing", "typ", func(f *forged) { delete(f.header, "typ") }),
		invalid("typ JWT", "typ", func(f *forged) { f.header["typ"] = "JWT" }),
		invalid("typ in another case", "typ", func(f *forged) { f.header["typ"] = "DPoP+JWT" }),
		invalid("alg none, no signature", "malformed", func(f *forged) {
			f.header["alg"] = "none"
			f.sign = func(string) []byte { return nil }
		}),
		invalid("alg none with a signature", "alg", func(f *forged) { f.header["alg"] = "none" }),
		invalid("alg HS256 keyed by a symmetric jwk", "alg", func(f *forged) {
			secret := []byte("0123456789abcdef0123456789abcdef")
			f.header["alg"] = "HS256"
			f.header["jwk"] = map[string]any{"kty": "oct", "k": b64(secret)}
			f.sign = func(input string) []byte {
				m := hmac.New(sha256.New, secret)
				m.Write([]byte(input))
				return m.Sum(nil)
			}
		}),
		invalid("alg RS256, not on this endpoint's list", "alg", func(f *forged) {
			f.header["alg"] = "RS256"
			f.header["jwk"] = map[string]any{"kty": "RSA", "n": b64(rsaKey.N.Bytes()), "e": "AQAB"}
			f.sign = func(input string) []byte {
				digest := sha256.Sum256([]byte(input))
				sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, 5, digest[:]) // crypto.SHA256
				require.NoError(t, err)
				return sig
			}
		}),
		invalid("alg ES384 with a P-256 key", "jwk", func(f *forged) { f.header["alg"] = "ES384" }),
		invalid("jwk holds the private key", "jwk_private", func(f *forged) {
			d, err := keyA.Bytes()
			require.NoError(t, err)
			f.header["jwk"].(map[string]any)["d"] = b64(d)
		}),
		invalid("jwk is symmetric", "jwk_symmetric", func(f *forged) {
			f.header["jwk"] = map[string]any{"kty": "oct", "k": b64([]byte("0123456789abcdef0123456789abcdef"))}
		}),
		invalid("jwk missing", "jwk", func(f *forged) { delete(f.header, "jwk") }),
		invalid("kid beside the jwk", "header", func(f *forged) { f.header["kid"] = "attacker" }),
		invalid("crit header", "header", func(f *forged) { f.header["crit"] = []string{"exp"} }),
		invalid("signature altered", "signature", func(f *forged) {
			inner := f.key
			f.sign = func(input string) []byte {
				digest := sha256.Sum256([]byte(input))
				r, s, err := ecdsa.Sign(rand.Reader, inner, digest[:])
				require.NoError(t, err)
				sig := make([]byte, 64)
				r.FillBytes(sig[:32])
				s.FillBytes(sig[32:])
				sig[10] ^= 0x01
				return sig
			}
		}),
		invalid("signed by another key than its jwk", "signature", func(f *forged) { f.key = keyB }),
		invalid("jti missing", "jti", func(f *forged) { delete(f.claims, "jti") }),
		invalid("jti empty", "jti", func(f *forged) { f.claims["jti"] = "" }),
		invalid("jti oversized", "jti", func(f *forged) { f.claims["jti"] = strings.Repeat("j", 300) }),
		invalid("jti a number", "jti", func(f *forged) { f.claims["jti"] = 7 }),
		invalid("htm of another method", "htm", func(f *forged) { f.claims["htm"] = http.MethodGet }),
		invalid("htm in lower case", "htm", func(f *forged) { f.claims["htm"] = "post" }),
		invalid("htu of another host", "htu", func(f *forged) { f.claims["htu"] = "https://evil.example/mcp" }),
		invalid("htu of another path", "htu", func(f *forged) { f.claims["htu"] = "https://mcp.example.com/other" }),
		invalid("htu of another scheme", "htu", func(f *forged) { f.claims["htu"] = "http://mcp.example.com/mcp" }),
		invalid("htu of another port", "htu", func(f *forged) { f.claims["htu"] = "https://mcp.example.com:8443/mcp" }),
		invalid("htu relative", "htu", func(f *forged) { f.claims["htu"] = "/mcp" }),
		{env: "allowed", name: "htu of the Host the request was sent to", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) { f.claims["htu"] = e.srv.URL + "/mcp" })}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_htu"},
		{env: "allowed", name: "htu of forwarded headers", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) { f.claims["htu"] = "https://evil.example/mcp" })},
				header: map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example;proto=https"}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_htu"},
		invalid("iat six minutes old", "iat", func(f *forged) { f.claims["iat"] = time.Now().Add(-6 * time.Minute).Unix() }),
		invalid("iat six minutes ahead", "iat", func(f *forged) { f.claims["iat"] = time.Now().Add(6 * time.Minute).Unix() }),
		invalid("iat missing", "iat", func(f *forged) { delete(f.claims, "iat") }),
		invalid("iat a string", "iat", func(f *forged) { f.claims["iat"] = "now" }),
		invalid("ath missing", "ath", func(f *forged) { delete(f.claims, "ath") }),
		invalid("ath of another token", "ath", func(f *forged) { f.claims["ath"] = ath("another token") }),
		invalid("ath in padded base64", "ath", func(f *forged) { f.claims["ath"] = f.claims["ath"].(string) + "=" }),
		{env: "allowed", name: "proof for another token of the same key", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			other := e.token(t, keyA, nil)
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, other, nil)}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_ath"},
		{env: "allowed", name: "thief's own key: good proof, wrong thumbprint", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyB, tokA, nil)}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_jkt"},
		{env: "allowed", name: "replayed proof", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			r := dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, nil)}}
			resp, body := e.send(t, r)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			return r
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_replay"},
		{env: "allowed", name: "two DPoP headers", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, nil), proof(t, keyA, tokA, nil)}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_header_count"},
		{env: "allowed", name: "no DPoP header", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_header_count"},
		{env: "allowed", name: "empty DPoP header", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{""}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_malformed"},
		{env: "allowed", name: "proof in the wrong header", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, header: map[string]string{"DPoP-Proof": proof(t, keyA, tokA, nil)}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_header_count"},
		{env: "allowed", name: "proof over the size cap", req: dpopReq(func(f *forged) { f.claims["pad"] = strings.Repeat("p", dpop.MaxProofSize) }),
			status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_size"},
		{env: "allowed", name: "proof with two dots too many", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, nil) + ".x.y"}}
		}, status: 401, challenge: badProof, body: bodyBadProof, reason: "dpop_malformed"},
		{env: "allowed", name: "bound token as Bearer, no proof", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "Bearer " + tokA}
		}, status: 401, challenge: []string{withError("Bearer", "invalid_token", descBoundBearer), dpopPlain}, body: bodyBoundBearer, reason: "bound_token_as_bearer"},
		{env: "allowed", name: "bound token as Bearer, with a good proof", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "Bearer " + tokA, proofs: []string{proof(t, keyA, tokA, nil)}}
		}, status: 401, challenge: []string{withError("Bearer", "invalid_token", descBoundBearer), dpopPlain}, body: bodyBoundBearer, reason: "bound_token_as_bearer"},
		{env: "disabled", name: "bound token as Bearer where DPoP is disabled", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			return dpopRequest{auth: "Bearer " + tokA}
		}, status: 401, challenge: []string{withError("Bearer", "invalid_token", descBoundBearer)}, body: bodyBoundBearer, reason: "bound_token_as_bearer"},
		{env: "allowed", name: "unbound token with the DPoP scheme and a proof", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			plain := e.token(t, nil, nil)
			return dpopRequest{auth: "DPoP " + plain, proofs: []string{proof(t, keyA, plain, nil)}}
		}, status: 401, challenge: badDPoPToken, body: bodyInvalid, reason: "dpop_unbound_token"},
		{env: "allowed", name: "expired bound token with a good proof", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			old := e.token(t, keyA, map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})
			return dpopRequest{auth: "DPoP " + old, proofs: []string{proof(t, keyA, old, nil)}}
		}, status: 401, challenge: badDPoPToken, body: bodyInvalid, reason: "expired"},
		{env: "allowed", name: "token bound by a certificate hash (mTLS)", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			return dpopRequest{auth: "Bearer " + e.token(t, nil, map[string]any{"cnf": map[string]any{"x5t#S256": ath("cert")}})}
		}, status: 401, challenge: []string{withError("Bearer", "invalid_token", descInvalidTok), dpopPlain}, body: bodyInvalid, reason: "binding"},
		{env: "allowed", name: "cnf.jkt that is not a thumbprint", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			tok := e.token(t, nil, map[string]any{"cnf": map[string]any{"jkt": "short"}})
			return dpopRequest{auth: "DPoP " + tok, proofs: []string{proof(t, keyA, tok, nil)}}
		}, status: 401, challenge: badDPoPToken, body: bodyInvalid, reason: "binding"},
		{env: "allowed", name: "DPoP token lacking the required scope", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			tok := e.token(t, keyA, map[string]any{"scope": "notes:read"})
			return dpopRequest{auth: "DPoP " + tok, proofs: []string{proof(t, keyA, tok, nil)}}
		}, status: 403, challenge: []string{bearerPlain, withError("DPoP", "insufficient_scope", descScope)}, body: bodyScope, reason: "missing_scope"},
		{env: "disabled", name: "DPoP scheme where DPoP is disabled", req: dpopReq(nil),
			status: 401, challenge: []string{bearerPlain}, body: bodyNoToken, reason: "dpop_disabled"},
		{env: "required", name: "unbound Bearer token where DPoP is required", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			return dpopRequest{auth: "Bearer " + e.token(t, nil, nil)}
		}, status: 401, challenge: []string{withError("DPoP", "invalid_token", descRequired)}, body: bodyRequired, reason: "bearer_refused"},
		{env: "required", name: "no credentials where DPoP is required", req: func(t *testing.T, e *dpopEnv, _ string) dpopRequest {
			return dpopRequest{}
		}, status: 401, challenge: []string{dpopPlain}, body: bodyNoToken, reason: "no_header"},
		{env: "required", name: "bad proof where DPoP is required", req: dpopReq(func(f *forged) { f.claims["htm"] = "GET" }),
			status: 401, challenge: []string{withError("DPoP", "invalid_dpop_proof", descInvalidProof)}, body: bodyBadProof, reason: "dpop_htm"},
		{env: "nonces", name: "nonce missing", req: dpopReq(nil),
			status: 401, challenge: []string{bearerPlain, withError("DPoP", "use_dpop_nonce", descUseNonce)}, body: bodyUseNonce, reason: "dpop_nonce_missing", nonce: true},
		{env: "nonces", name: "nonce made up", req: dpopReq(func(f *forged) { f.claims["nonce"] = "made-up" }),
			status: 401, challenge: []string{bearerPlain, withError("DPoP", "use_dpop_nonce", descUseNonce)}, body: bodyUseNonce, reason: "dpop_nonce_stale", nonce: true},
		{env: "nonces", name: "nonce of another server", req: func(t *testing.T, e *dpopEnv, tokA string) dpopRequest {
			n := envs["other-nonces"].nonce(t, keyA)
			return dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) { f.claims["nonce"] = n })}}
		}, status: 401, challenge: []string{bearerPlain, withError("DPoP", "use_dpop_nonce", descUseNonce)}, body: bodyUseNonce, reason: "dpop_nonce_stale", nonce: true},
		{env: "nonces", name: "nonce a number", req: dpopReq(func(f *forged) { f.claims["nonce"] = 42 }),
			status: 401, challenge: []string{bearerPlain, withError("DPoP", "invalid_dpop_proof", descInvalidProof)}, body: bodyBadProof, reason: "dpop_nonce"},
	}
	envs["other-nonces"] = newDPoPEnv(t, auth.DPoP{Nonces: true})

	tokens := map[string]string{}
	for name, e := range envs {
		tokens[name] = e.token(t, keyA, nil)
	}
	for _, a := range attacks {
		t.Run(a.env+"/"+a.name, func(t *testing.T) {
			e := envs[a.env]
			tokA := tokens[a.env]
			req := a.req(t, e, tokA)
			resp, body := e.send(t, req)
			assert.Equal(t, a.status, resp.StatusCode, body)
			assert.Equal(t, a.challenge, resp.Header.Values("WWW-Authenticate"))
			assert.Equal(t, a.body, body)
			assert.Equal(t, a.reason, e.lastReason())
			if a.nonce {
				assert.Len(t, resp.Header.Values("DPoP-Nonce"), 1)
			} else {
				assert.Empty(t, resp.Header.Values("DPoP-Nonce"))
			}
			needles := []string{tokA, e.ds.URL(), "dpop:", "auth:", " (", "evil.example", "attacker"}
			needles = append(needles, req.proofs...)
			for name, values := range resp.Header {
				for _, v := range append(values, body) {
					for _, n := range needles {
						if n != "" {
							assert.NotContains(t, v, n, "header %s", name)
						}
					}
				}
			}
		})
	}
	t.Run("A still gets in everywhere DPoP is on", func(t *testing.T) {
		for _, name := range []string{"allowed", "required", "nonces"} {
			e, tokA := envs[name], tokens[name]
			var n string
			if name == "nonces" {
				n = e.nonce(t, keyA)
			}
			resp, body := e.send(t, dpopRequest{auth: "DPoP " + tokA, proofs: []string{proof(t, keyA, tokA, func(f *forged) {
				if n != "" {
					f.claims["nonce"] = n
				}
			})}})
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", name, body)
			assert.Equal(t, e.ds.User().Subject+" "+thumbprint(t, keyA), body, name)
		}
	})
}

// nonce asks e for a nonce the way a client learns it: a request without
// one, answered with use_dpop_nonce.
func (e *dpopEnv) nonce(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tok := e.token(t, key, nil)
	resp, body := e.send(t, dpopRequest{auth: "DPoP " + tok, proofs: []string{proof(t, key, tok, nil)}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	n := resp.Header.Get("DPoP-Nonce")
	require.NotEmpty(t, n)
	return n
}

// TestDPoPNonceFlow: a client without a nonce is handed one and gets in
// with it; replicas sharing NonceSecret accept each other's nonces, and a
// replica with another secret does not.
func TestDPoPNonceFlow(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	one := newDPoPEnv(t, auth.DPoP{Nonces: true, NonceSecret: secret})
	two := newDPoPEnvWith(t, one.ds, auth.DPoP{Nonces: true, NonceSecret: secret})
	other := newDPoPEnvWith(t, one.ds, auth.DPoP{Nonces: true, NonceSecret: []byte("another secret, just as long as the first")})
	key := newECKey(t, elliptic.P256())
	tok := one.token(t, key, nil)

	n := one.nonce(t, key)
	withNonce := func(n string) dpopRequest {
		return dpopRequest{auth: "DPoP " + tok, proofs: []string{proof(t, key, tok, func(f *forged) { f.claims["nonce"] = n })}}
	}
	for _, e := range []*dpopEnv{one, two} {
		resp, body := e.send(t, withNonce(n))
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Empty(t, resp.Header.Values("DPoP-Nonce"), "the nonce is current: nothing new to hand out")
	}
	resp, body := other.send(t, withNonce(n))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	assert.Equal(t, bodyUseNonce, body)
	fresh := resp.Header.Get("DPoP-Nonce")
	assert.NotEqual(t, n, fresh)
	resp, body = other.send(t, withNonce(fresh))
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
}

// TestDPoPTokenCache: the token's checks are cached, the proof is checked
// on every request.
func TestDPoPTokenCache(t *testing.T) {
	e := newDPoPEnv(t, auth.DPoP{})
	keyA, keyB := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	tok := e.token(t, keyA, nil)

	first := proof(t, keyA, tok, nil)
	resp, body := e.send(t, dpopRequest{auth: "DPoP " + tok, proofs: []string{first}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	cached := e.claims.Load()
	resp, body = e.send(t, dpopRequest{auth: "DPoP " + tok, proofs: []string{proof(t, keyA, tok, nil)}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Same(t, cached, e.claims.Load(), "the second request is a cache hit")
	assert.Equal(t, thumbprint(t, keyA), cached.KeyThumbprint)

	for name, p := range map[string]string{"replayed": first, "another key": proof(t, keyB, tok, nil)} {
		resp, body = e.send(t, dpopRequest{auth: "DPoP " + tok, proofs: []string{p}})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s: %s", name, body)
		assert.Equal(t, bodyBadProof, body, name)
	}
	resp, body = e.send(t, dpopRequest{auth: "Bearer " + tok})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a cached bound token is still not a bearer token: %s", body)
}
