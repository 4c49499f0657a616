package dpop

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
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testURL   = "https://mcp.example.com/mcp"
	testToken = "access-token-of-the-caller"
)

var testNow = time.Unix(1_800_000_000, 0)

var (
	testRSA = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(rsa.GenerateKey(rand.Reader, 2048)) })
	testEC  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	testEd  = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return mustKey(k, err)
	})
	otherEC = sync.OnceValue(func() *ecdsa.PrivateKey { return mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
)

func mustKey[K any](k K, err error) K {
	if err != nil {
		panic(err)
	}
	return k
}

func newTestVerifier(t testing.TB, o Options) *Verifier {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustProof(t testing.TB, key crypto.Signer, c ProofClaims) string {
	t.Helper()
	p, err := NewProof(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testRequest() Request {
	return Request{Method: "POST", URL: testURL, AccessToken: testToken}
}

// jwkOf is the public JWK of key as NewProof writes it.
func jwkOf(t testing.TB, key crypto.Signer) map[string]any {
	t.Helper()
	h := segment(t, mustProof(t, key, ProofClaims{Method: "GET", URL: testURL}), 0)
	return h["jwk"].(map[string]any)
}

// segment decodes part i of a proof.
func segment(t testing.TB, proof string, i int) map[string]any {
	t.Helper()
	b, err := b64.DecodeString(strings.Split(proof, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// forge is a proof under construction: a header and claims that a hostile
// case edits before it is signed with key.
type forge struct {
	header, claims map[string]any
	key            crypto.Signer
}

func newForge(t testing.TB, key crypto.Signer) *forge {
	t.Helper()
	p := mustProof(t, key, ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow, JTI: "jti-1"})
	return &forge{header: segment(t, p, 0), claims: segment(t, p, 1), key: key}
}

// signRaw signs the raw JSON header and claims with key, in the JWS form
// of the algorithm the key's type implies (whatever the header says).
func signRaw(t testing.TB, key crypto.Signer, header, claims string) string {
	t.Helper()
	signed := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	alg, id := "EdDSA", crypto.Hash(0)
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		alg, id = "RS256", crypto.SHA256
	case *ecdsa.PublicKey:
		alg, id = map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[k.Curve.Params().BitSize], map[int]crypto.Hash{256: crypto.SHA256, 384: crypto.SHA384, 521: crypto.SHA512}[k.Curve.Params().BitSize]
	}
	sig, err := sign(key, alg, id, signed)
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64.EncodeToString(sig)
}

func (f *forge) sign(t testing.TB) string {
	t.Helper()
	h, _ := json.Marshal(f.header)
	c, _ := json.Marshal(f.claims)
	return signRaw(t, f.key, string(h), string(c))
}

func TestVerifyAccepts(t *testing.T) {
	ps256 := func(t *testing.T) string {
		f := newForge(t, testRSA())
		f.header["alg"] = "PS256"
		h, _ := json.Marshal(f.header)
		c, _ := json.Marshal(f.claims)
		signed := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
		sum := sha256.Sum256([]byte(signed))
		sig, err := rsa.SignPSS(rand.Reader, testRSA(), crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return signed + "." + b64.EncodeToString(sig)
	}
	p384 := mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	proof := func(key crypto.Signer, c ProofClaims) func(*testing.T) string {
		return func(t *testing.T) string {
			if c.Method == "" {
				c.Method = "POST"
			}
			if c.URL == "" {
				c.URL = testURL
			}
			if c.AccessToken == "" {
				c.AccessToken = testToken
			}
			if c.IssuedAt.IsZero() {
				c.IssuedAt = testNow
			}
			return mustProof(t, key, c)
		}
	}
	tests := []struct {
		name  string
		proof func(*testing.T) string
		req   func(*Request)
		opts  Options
		alg   string
		nonce string
	}{
		{name: "RSA RS256", proof: proof(testRSA(), ProofClaims{}), alg: "RS256"},
		{name: "RSA PS256", proof: ps256, alg: "PS256"},
		{name: "EC P-256", proof: proof(testEC(), ProofClaims{}), alg: "ES256"},
		{name: "EC P-384", proof: proof(p384, ProofClaims{}), alg: "ES384"},
		{name: "Ed25519", proof: proof(testEd(), ProofClaims{}), alg: "EdDSA"},
		{name: "htu query differs", proof: proof(testEC(), ProofClaims{URL: testURL + "?session=other"}), req: func(r *Request) { r.URL = testURL + "?session=mine" }, alg: "ES256"},
		{name: "htu with fragment", proof: proof(testEC(), ProofClaims{URL: testURL + "#frag"}), alg: "ES256"},
		{name: "htu scheme and host case, default port", proof: proof(testEC(), ProofClaims{URL: "HTTPS://MCP.Example.COM:443/mcp"}), alg: "ES256"},
		{name: "htu percent-encoded unreserved", proof: proof(testEC(), ProofClaims{URL: "https://mcp.example.com/%6Dcp"}), alg: "ES256"},
		{name: "htu dot segments", proof: proof(testEC(), ProofClaims{URL: "https://mcp.example.com/a/../mcp"}), alg: "ES256"},
		{name: "http default port", proof: proof(testEC(), ProofClaims{URL: "http://localhost:80/mcp"}), req: func(r *Request) { r.URL = "http://localhost/mcp" }, alg: "ES256"},
		{name: "iat at the window's edges", proof: proof(testEC(), ProofClaims{IssuedAt: testNow.Add(-5 * time.Minute)}), alg: "ES256"},
		{name: "iat in the future within the window", proof: proof(testEC(), ProofClaims{IssuedAt: testNow.Add(5 * time.Minute)}), alg: "ES256"},
		{name: "no access token, no ath", proof: func(t *testing.T) string {
			return mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, IssuedAt: testNow})
		}, req: func(r *Request) { r.AccessToken = "" }, alg: "ES256"},
		{name: "nonce accepted", proof: proof(testEC(), ProofClaims{Nonce: "n-1"}), opts: Options{Nonce: func(_ context.Context, n string) bool { return n == "n-1" }}, alg: "ES256", nonce: "n-1"},
		{name: "bound key matches", proof: proof(testEC(), ProofClaims{}), req: func(r *Request) { r.KeyThumbprint = mustKey(Thumbprint(testEC().Public())) }, alg: "ES256"},
		{name: "restricted allow-list", proof: proof(testEd(), ProofClaims{}), opts: Options{Algorithms: []string{"EdDSA"}}, alg: "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.opts)
			r := testRequest()
			if tt.req != nil {
				tt.req(&r)
			}
			p, err := v.Verify(t.Context(), tt.proof(t), r)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Algorithm != tt.alg || p.Thumbprint == "" || p.IssuedAt.IsZero() || p.Nonce != tt.nonce {
				t.Fatalf("proof = %+v, want alg %s, nonce %q", p, tt.alg, tt.nonce)
			}
		})
	}
}

// TestVerifyRefuses is the hostile table: each proof is refused with the
// expected kind and reason, and the error text is fixed (nothing from the
// proof is echoed).
func TestVerifyRefuses(t *testing.T) {
	edit := func(key crypto.Signer, f func(*forge)) func(*testing.T) string {
		return func(t *testing.T) string {
			fg := newForge(t, key)
			f(fg)
			return fg.sign(t)
		}
	}
	raw := func(header, claims string) func(*testing.T) string {
		return func(t *testing.T) string { return signRaw(t, testEC(), header, claims) }
	}
	good := func(t *testing.T) string { return newForge(t, testEC()).sign(t) }
	ecJWK := func(t *testing.T) string { b, _ := json.Marshal(jwkOf(t, testEC())); return string(b) }
	goodClaims := `{"jti":"j","htm":"POST","htu":"` + testURL + `","iat":1800000000,"ath":"` + athOf(testToken) + `"}`
	weakRSA := mustKey(rsa.GenerateKey(rand.Reader, 1024))
	p384 := mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	stale := Options{Nonce: func(context.Context, string) bool { return false }}

	tests := []struct {
		name   string
		proof  func(*testing.T) string
		req    func(*Request)
		opts   Options
		kind   error
		reason string
	}{
		{name: "typ missing", proof: edit(testEC(), func(f *forge) { delete(f.header, "typ") }), kind: ErrInvalidProof, reason: "typ"},
		{name: "typ JWT", proof: edit(testEC(), func(f *forge) { f.header["typ"] = "JWT" }), kind: ErrInvalidProof, reason: "typ"},
		{name: "typ not a string", proof: edit(testEC(), func(f *forge) { f.header["typ"] = 1 }), kind: ErrInvalidProof, reason: "typ"},
		{name: "alg none", proof: func(t *testing.T) string {
			f := newForge(t, testEC())
			f.header["alg"] = "none"
			h, _ := json.Marshal(f.header)
			c, _ := json.Marshal(f.claims)
			return b64.EncodeToString(h) + "." + b64.EncodeToString(c) + ".AA"
		}, kind: ErrInvalidProof, reason: "alg"},
		{name: "alg none without signature", proof: func(t *testing.T) string {
			f := newForge(t, testEC())
			f.header["alg"] = "none"
			h, _ := json.Marshal(f.header)
			c, _ := json.Marshal(f.claims)
			return b64.EncodeToString(h) + "." + b64.EncodeToString(c) + "."
		}, kind: ErrInvalidProof, reason: "malformed"},
		{name: "alg HS256 with an oct jwk", proof: func(t *testing.T) string {
			h := `{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`
			signed := b64.EncodeToString([]byte(h)) + "." + b64.EncodeToString([]byte(goodClaims))
			m := hmac.New(sha256.New, []byte("secret"))
			m.Write([]byte(signed))
			return signed + "." + b64.EncodeToString(m.Sum(nil))
		}, kind: ErrInvalidProof, reason: "alg"},
		{name: "alg ES256K unsupported", proof: edit(testEC(), func(f *forge) { f.header["alg"] = "ES256K" }), kind: ErrInvalidProof, reason: "alg"},
		{name: "alg es256 lowercase", proof: edit(testEC(), func(f *forge) { f.header["alg"] = "es256" }), kind: ErrInvalidProof, reason: "alg"},
		{name: "alg not in the allow-list", proof: good, opts: Options{Algorithms: []string{"EdDSA"}}, kind: ErrInvalidProof, reason: "alg"},
		{name: "alg missing", proof: edit(testEC(), func(f *forge) { delete(f.header, "alg") }), kind: ErrInvalidProof, reason: "alg"},
		{name: "jwk missing", proof: edit(testEC(), func(f *forge) { delete(f.header, "jwk") }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "jwk not an object", proof: edit(testEC(), func(f *forge) { f.header["jwk"] = "key" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "EC private key in jwk", proof: edit(testEC(), func(f *forge) {
			f.header["jwk"].(map[string]any)["d"] = b64.EncodeToString(mustBytes(testEC().Bytes()))
		}), kind: ErrInvalidProof, reason: "jwk_private"},
		{name: "RSA private members in jwk", proof: edit(testRSA(), func(f *forge) {
			f.header["jwk"].(map[string]any)["p"] = b64.EncodeToString(testRSA().Primes[0].Bytes())
			f.header["jwk"].(map[string]any)["q"] = b64.EncodeToString(testRSA().Primes[1].Bytes())
		}), kind: ErrInvalidProof, reason: "jwk_private"},
		{name: "Ed25519 private key in jwk", proof: edit(testEd(), func(f *forge) {
			f.header["jwk"].(map[string]any)["d"] = b64.EncodeToString(testEd().Seed())
		}), kind: ErrInvalidProof, reason: "jwk_private"},
		{name: "symmetric jwk under ES256", proof: edit(testEC(), func(f *forge) {
			f.header["jwk"] = map[string]any{"kty": "oct", "k": "c2VjcmV0"}
		}), kind: ErrInvalidProof, reason: "jwk_symmetric"},
		{name: "RSA key of 1024 bits", proof: edit(weakRSA, func(f *forge) {}), kind: ErrInvalidProof, reason: "jwk_weak"},
		{name: "RSA key under ES256", proof: edit(testRSA(), func(f *forge) { f.header["alg"] = "ES256" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "EC key under EdDSA", proof: edit(testEC(), func(f *forge) { f.header["alg"] = "EdDSA" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "EC P-384 key under ES256", proof: edit(p384, func(f *forge) { f.header["alg"] = "ES256" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "EC key on secp256k1", proof: edit(testEC(), func(f *forge) { f.header["jwk"].(map[string]any)["crv"] = "secp256k1" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "EC point not on the curve", proof: edit(testEC(), func(f *forge) {
			f.header["jwk"].(map[string]any)["y"] = f.header["jwk"].(map[string]any)["x"]
		}), kind: ErrInvalidProof, reason: "jwk"},
		{name: "RSA n with a leading zero", proof: edit(testRSA(), func(f *forge) {
			f.header["jwk"].(map[string]any)["n"] = b64.EncodeToString(append([]byte{0}, testRSA().N.Bytes()...))
		}), kind: ErrInvalidProof, reason: "jwk"},
		{name: "RSA even exponent", proof: edit(testRSA(), func(f *forge) { f.header["jwk"].(map[string]any)["e"] = "AQAA" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "jwk kty unknown", proof: edit(testEC(), func(f *forge) { f.header["jwk"].(map[string]any)["kty"] = "ec" }), kind: ErrInvalidProof, reason: "jwk"},
		{name: "signed by another key", proof: func(t *testing.T) string {
			f := newForge(t, testEC())
			f.key = otherEC()
			return f.sign(t)
		}, kind: ErrInvalidProof, reason: "signature"},
		{name: "signature altered", proof: func(t *testing.T) string {
			p := good(t)
			sig, _ := b64.DecodeString(p[strings.LastIndexByte(p, '.')+1:])
			sig[5] ^= 1
			return p[:strings.LastIndexByte(p, '.')+1] + b64.EncodeToString(sig)
		}, kind: ErrInvalidProof, reason: "signature"},
		{name: "ES256 signature in ASN.1", proof: func(t *testing.T) string {
			p := good(t)
			signed := p[:strings.LastIndexByte(p, '.')]
			sum := sha256.Sum256([]byte(signed))
			sig, _ := ecdsa.SignASN1(rand.Reader, testEC(), sum[:])
			return signed + "." + b64.EncodeToString(sig)
		}, kind: ErrInvalidProof, reason: "signature"},
		{name: "claims altered after signing", proof: func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			c, _ := json.Marshal(map[string]any{"jti": "j", "htm": "GET", "htu": testURL, "iat": testNow.Unix(), "ath": athOf(testToken)})
			return p[0] + "." + b64.EncodeToString(c) + "." + p[2]
		}, kind: ErrInvalidProof, reason: "signature"},
		{name: "jti missing", proof: edit(testEC(), func(f *forge) { delete(f.claims, "jti") }), kind: ErrInvalidProof, reason: "jti"},
		{name: "jti empty", proof: edit(testEC(), func(f *forge) { f.claims["jti"] = "" }), kind: ErrInvalidProof, reason: "jti"},
		{name: "jti a number", proof: edit(testEC(), func(f *forge) { f.claims["jti"] = 7 }), kind: ErrInvalidProof, reason: "jti"},
		{name: "jti of 257 bytes", proof: edit(testEC(), func(f *forge) { f.claims["jti"] = strings.Repeat("j", 257) }), kind: ErrInvalidProof, reason: "jti"},
		{name: "htm GET for POST", proof: edit(testEC(), func(f *forge) { f.claims["htm"] = "GET" }), kind: ErrInvalidProof, reason: "htm"},
		{name: "htm lower case", proof: edit(testEC(), func(f *forge) { f.claims["htm"] = "post" }), kind: ErrInvalidProof, reason: "htm"},
		{name: "htm missing", proof: edit(testEC(), func(f *forge) { delete(f.claims, "htm") }), kind: ErrInvalidProof, reason: "htm"},
		{name: "htu of another host", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "https://evil.example.com/mcp" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu of another path", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "https://mcp.example.com/admin" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu with a trailing slash", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = testURL + "/" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu of another scheme", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "http://mcp.example.com/mcp" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu of another port", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "https://mcp.example.com:8443/mcp" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu with userinfo", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "https://user@mcp.example.com/mcp" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu relative", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "/mcp" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu encoded slash", proof: edit(testEC(), func(f *forge) { f.claims["htu"] = "https://mcp.example.com%2Fmcp" }), kind: ErrInvalidProof, reason: "htu"},
		{name: "htu missing", proof: edit(testEC(), func(f *forge) { delete(f.claims, "htu") }), kind: ErrInvalidProof, reason: "htu"},
		{name: "iat too old", proof: edit(testEC(), func(f *forge) { f.claims["iat"] = testNow.Add(-5*time.Minute - time.Second).Unix() }), kind: ErrInvalidProof, reason: "iat"},
		{name: "iat too new", proof: edit(testEC(), func(f *forge) { f.claims["iat"] = testNow.Add(5*time.Minute + time.Second).Unix() }), kind: ErrInvalidProof, reason: "iat"},
		{name: "iat missing", proof: edit(testEC(), func(f *forge) { delete(f.claims, "iat") }), kind: ErrInvalidProof, reason: "iat"},
		{name: "iat a string", proof: edit(testEC(), func(f *forge) { f.claims["iat"] = "1800000000" }), kind: ErrInvalidProof, reason: "iat"},
		{name: "iat negative", proof: edit(testEC(), func(f *forge) { f.claims["iat"] = -1 }), kind: ErrInvalidProof, reason: "iat"},
		{name: "iat null", proof: edit(testEC(), func(f *forge) { f.claims["iat"] = nil }), kind: ErrInvalidProof, reason: "iat"},
		{name: "iat 1e300", proof: func(t *testing.T) string {
			c := strings.Replace(goodClaims, `"iat":1800000000`, `"iat":1e300`, 1)
			return signRaw(t, testEC(), `{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK(t)+`}`, c)
		}, kind: ErrInvalidProof, reason: "iat"},
		{name: "ath missing", proof: edit(testEC(), func(f *forge) { delete(f.claims, "ath") }), kind: ErrInvalidProof, reason: "ath"},
		{name: "ath padded", proof: edit(testEC(), func(f *forge) { f.claims["ath"] = f.claims["ath"].(string) + "=" }), kind: ErrInvalidProof, reason: "ath"},
		{name: "proof for another token", proof: edit(testEC(), func(f *forge) { f.claims["ath"] = athOf("another-token") }), kind: ErrInvalidProof, reason: "ath"},
		{name: "thumbprint of another key", proof: good, req: func(r *Request) { r.KeyThumbprint = mustKey(Thumbprint(otherEC().Public())) }, kind: ErrKeyMismatch, reason: "jkt"},
		{name: "header not base64url", proof: func(t *testing.T) string { return "e*J." + strings.SplitN(good(t), ".", 2)[1] }, kind: ErrInvalidProof, reason: "malformed"},
		{name: "claims padded base64", proof: func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			return p[0] + "." + p[1] + "==." + p[2]
		}, kind: ErrInvalidProof, reason: "malformed"},
		{name: "two segments", proof: func(t *testing.T) string { p := good(t); return p[:strings.LastIndexByte(p, '.')] }, kind: ErrInvalidProof, reason: "malformed"},
		{name: "four segments", proof: func(t *testing.T) string { return good(t) + ".AA" }, kind: ErrInvalidProof, reason: "malformed"},
		{name: "JWE-like five segments", proof: func(t *testing.T) string { return "a.b.c.d.e" }, kind: ErrInvalidProof, reason: "malformed"},
		{name: "empty", proof: func(t *testing.T) string { return "" }, kind: ErrInvalidProof, reason: "malformed"},
		{name: "JSON serialization", proof: func(t *testing.T) string { return `{"payload":"e30","signatures":[]}` }, kind: ErrInvalidProof, reason: "malformed"},
		{name: "header JSON junk", proof: raw(`{"typ":"dpop+jwt",`, goodClaims), kind: ErrInvalidProof, reason: "malformed"},
		{name: "claims an array", proof: raw(`{"typ":"dpop+jwt","alg":"ES256"}`, `[1,2]`), kind: ErrInvalidProof, reason: "malformed"},
		{name: "claims with trailing data", proof: raw(`{"typ":"dpop+jwt","alg":"ES256"}`, goodClaims+`{}`), kind: ErrInvalidProof, reason: "malformed"},
		{name: "duplicate claim jti", proof: func(t *testing.T) string {
			return signRaw(t, testEC(), `{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK(t)+`}`, strings.Replace(goodClaims, `{`, `{"jti":"other",`, 1))
		}, kind: ErrInvalidProof, reason: "malformed"},
		{name: "duplicate header alg, escaped", proof: func(t *testing.T) string {
			return signRaw(t, testEC(), `{"typ":"dpop+jwt","alg":"ES256","\u0061lg":"none","jwk":`+ecJWK(t)+`}`, goodClaims)
		}, kind: ErrInvalidProof, reason: "malformed"},
		{name: "duplicate jwk member", proof: func(t *testing.T) string {
			j := ecJWK(t)
			return signRaw(t, testEC(), `{"typ":"dpop+jwt","alg":"ES256","jwk":`+strings.Replace(j, `{`, `{"x":"AA",`, 1)+`}`, goodClaims)
		}, kind: ErrInvalidProof, reason: "jwk"},
		{name: "crit header", proof: edit(testEC(), func(f *forge) { f.header["crit"] = []string{"exp"} }), kind: ErrInvalidProof, reason: "header"},
		{name: "kid header", proof: edit(testEC(), func(f *forge) { f.header["kid"] = "k1" }), kind: ErrInvalidProof, reason: "header"},
		{name: "jku header", proof: edit(testEC(), func(f *forge) { f.header["jku"] = "https://evil.example.com/jwks" }), kind: ErrInvalidProof, reason: "header"},
		{name: "x5u header", proof: edit(testEC(), func(f *forge) { f.header["x5u"] = "https://evil.example.com/cert" }), kind: ErrInvalidProof, reason: "header"},
		{name: "x5c header", proof: edit(testEC(), func(f *forge) { f.header["x5c"] = []string{"MIIB"} }), kind: ErrInvalidProof, reason: "header"},
		{name: "oversized proof", proof: func(t *testing.T) string { return strings.Repeat("A", MaxProofSize+1) }, kind: ErrInvalidProof, reason: "size"},
		{name: "nonce missing when required", proof: good, opts: Options{Nonce: func(context.Context, string) bool { return true }}, kind: ErrUseNonce, reason: "nonce_missing"},
		{name: "nonce stale", proof: edit(testEC(), func(f *forge) { f.claims["nonce"] = "old" }), opts: stale, kind: ErrUseNonce, reason: "nonce_stale"},
		{name: "nonce not a string", proof: edit(testEC(), func(f *forge) { f.claims["nonce"] = 1 }), opts: stale, kind: ErrInvalidProof, reason: "nonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.opts)
			r := testRequest()
			if tt.req != nil {
				tt.req(&r)
			}
			_, err := v.Verify(t.Context(), tt.proof(t), r)
			checkRefusal(t, err, tt.kind, tt.reason)
		})
	}
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}

func checkRefusal(t *testing.T, err error, kind error, reason string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var pe *ProofError
	if !errors.As(err, &pe) || pe.Reason != reason {
		t.Fatalf("err = %v, want reason %q", err, reason)
	}
	if got, want := err.Error(), kind.Error()+" ("+reason+")"; got != want {
		t.Fatalf("error text %q, want the fixed %q", got, want)
	}
	if kind != ErrUseNonce && !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("%v does not match ErrInvalidProof", err)
	}
	if kind == ErrUseNonce && errors.Is(err, ErrInvalidProof) {
		t.Fatalf("%v matches ErrInvalidProof", err)
	}
}

func TestVerifyRefusesReplay(t *testing.T) {
	v := newTestVerifier(t, Options{})
	p := mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow})
	if _, err := v.Verify(t.Context(), p, testRequest()); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(t.Context(), p, testRequest())
	checkRefusal(t, err, ErrReplay, "replay")
}

// TestVerifyRecordsOnlyAcceptedProofs: a refused proof does not burn its
// jti, so the client's retry with the same jti is not a replay.
func TestVerifyRecordsOnlyAcceptedProofs(t *testing.T) {
	v := newTestVerifier(t, Options{})
	p := mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow, JTI: "once"})
	if _, err := v.Verify(t.Context(), p, Request{Method: "GET", URL: testURL, AccessToken: testToken}); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("GET: %v", err)
	}
	if _, err := v.Verify(t.Context(), p, testRequest()); err != nil {
		t.Fatalf("after a refusal: %v", err)
	}
}

func TestVerifyRefusesBadRequestURL(t *testing.T) {
	v := newTestVerifier(t, Options{})
	p := mustProof(t, testEC(), ProofClaims{Method: "POST", URL: testURL, IssuedAt: testNow})
	for _, u := range []string{"", "/mcp", "ftp://mcp.example.com/mcp", "https:///mcp"} {
		_, err := v.Verify(t.Context(), p, Request{Method: "POST", URL: u})
		if err == nil || errors.Is(err, ErrInvalidProof) {
			t.Errorf("URL %q: err = %v, want a caller error", u, err)
		}
	}
}

func TestNewVerifierRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"HS256":            {Algorithms: []string{"HS256"}},
		"none":             {Algorithms: []string{"none"}},
		"negative window":  {IATWindow: -time.Second},
		"negative entries": {MaxReplayEntries: -1},
	} {
		if _, err := NewVerifier(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	v := newTestVerifier(t, Options{})
	if got := strings.Join(v.Algorithms(), " "); got != "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA" {
		t.Errorf("default Algorithms = %s", got)
	}
}

func mustBytes(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
