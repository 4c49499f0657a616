package descope_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	mu      sync.Mutex
	reasons []string
}

func newDPoPEnv(t *testing.T, d auth.DPoP) *dpopEnv {
	t.Helper()
	e := &dpopEnv{ds: descopetest.NewServer()}
	t.Cleanup(e.ds.Close)
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
func (h reasonHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h reasonHandler) WithGroup(string) slog.Handler           { return h }
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
