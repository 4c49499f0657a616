package dpop

// proof.go makes proofs: the client side of RFC 9449 §4.2, for clients and
// for tests of servers that check proofs.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"time"
)

// ProofClaims are the parts of a proof [NewProof] makes.
type ProofClaims struct {
	// Method and URL are the request's method and URL (htm, htu).
	Method, URL string
	// AccessToken, when not empty, is hashed into ath.
	AccessToken string
	// Nonce, when not empty, is the server's last DPoP-Nonce.
	Nonce string
	// IssuedAt is iat; zero means now.
	IssuedAt time.Time
	// JTI is jti; empty means 128 random bits.
	JTI string
}

// NewProof returns a signed DPoP proof for c, with key's public half as the
// header jwk. key is an *rsa.PrivateKey (signed RS256), an
// *ecdsa.PrivateKey on P-256, P-384 or P-521 (ES256, ES384, ES512), an
// ed25519.PrivateKey (EdDSA), or any crypto.Signer whose Public is one of
// those (a hardware or KMS key).
func NewProof(key crypto.Signer, c ProofClaims) (string, error) {
	var alg string
	var jwk map[string]string
	var id crypto.Hash
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		alg, id = "RS256", crypto.SHA256
		jwk = map[string]string{"kty": "RSA", "n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		crv, x, y, err := ecPoint(pub)
		if err != nil {
			return "", err
		}
		alg, id = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv], map[string]crypto.Hash{"P-256": crypto.SHA256, "P-384": crypto.SHA384, "P-521": crypto.SHA512}[crv]
		jwk = map[string]string{"kty": "EC", "crv": crv, "x": x, "y": y}
	case ed25519.PublicKey:
		alg = "EdDSA"
		jwk = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}
	default:
		return "", errors.New("dpop: NewProof needs an RSA, ECDSA or Ed25519 key")
	}
	claims := map[string]any{"htm": c.Method, "htu": c.URL}
	if c.JTI != "" {
		claims["jti"] = c.JTI
	} else {
		claims["jti"] = rand.Text()
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	claims["iat"] = iat.Unix()
	if c.AccessToken != "" {
		sum := sha256.Sum256([]byte(c.AccessToken))
		claims["ath"] = b64.EncodeToString(sum[:])
	}
	if c.Nonce != "" {
		claims["nonce"] = c.Nonce
	}
	header, err := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwk})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	sig, err := sign(key, alg, id, signed)
	if err != nil {
		return "", err
	}
	return signed + "." + b64.EncodeToString(sig), nil
}

// sign signs with key in the JWS form of alg.
func sign(key crypto.Signer, alg string, id crypto.Hash, signed string) ([]byte, error) {
	if alg == "EdDSA" {
		return key.Sign(rand.Reader, []byte(signed), crypto.Hash(0))
	}
	var digest []byte
	switch id {
	case crypto.SHA256:
		s := sha256.Sum256([]byte(signed))
		digest = s[:]
	case crypto.SHA384:
		s := sha512.Sum384([]byte(signed))
		digest = s[:]
	default:
		s := sha512.Sum512([]byte(signed))
		digest = s[:]
	}
	sig, err := key.Sign(rand.Reader, digest, id)
	if err != nil || alg[:2] != "ES" {
		return sig, err
	}
	// crypto.Signer gives ECDSA signatures in ASN.1; JWS wants r || s.
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, err
	}
	size := (key.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
