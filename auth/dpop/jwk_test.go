package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
)

// rfc7638Key is the RSA key of RFC 7638 §3.1, whose thumbprint §3.1 gives.
const rfc7638Key = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`

const rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

func TestThumbprintRFC7638Example(t *testing.T) {
	k, err := parseJWK(json.RawMessage(rfc7638Key), "RS256")
	if err != nil {
		t.Fatal(err)
	}
	if k.thumbprint != rfc7638Thumbprint {
		t.Fatalf("thumbprint of the header jwk = %s, want %s", k.thumbprint, rfc7638Thumbprint)
	}
	got, err := Thumbprint(k.key)
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc7638Thumbprint {
		t.Fatalf("Thumbprint = %s, want %s", got, rfc7638Thumbprint)
	}
}

// TestThumbprintAgreesWithJWK: the thumbprint a client computes from its
// key with Thumbprint is the one Verify computes from the header jwk.
func TestThumbprintAgreesWithJWK(t *testing.T) {
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for name, key := range map[string]crypto.Signer{"rsa": testRSA(), "p256": testEC(), "p521": p521, "ed25519": testEd()} {
		t.Run(name, func(t *testing.T) {
			v := newTestVerifier(t, Options{})
			proof := mustProof(t, key, ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow})
			p, err := v.Verify(t.Context(), proof, Request{Method: "POST", URL: testURL, AccessToken: testToken})
			if err != nil {
				t.Fatal(err)
			}
			want, err := Thumbprint(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if p.Thumbprint != want {
				t.Fatalf("Verify thumbprint %s, Thumbprint %s", p.Thumbprint, want)
			}
		})
	}
}

func TestThumbprintRefusesOtherKeys(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Thumbprint(&p224.PublicKey); err == nil {
		t.Error("P-224 key accepted")
	}
	if _, err := Thumbprint("key"); err == nil {
		t.Error("a string accepted as a key")
	}
}
