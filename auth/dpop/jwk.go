package dpop

// jwk.go turns a proof's header jwk into a public key, refusing anything
// but a canonical RSA, EC or Ed25519 public key, and computes its RFC 7638
// thumbprint.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
)

// b64 is unpadded base64url that refuses padding, stray characters and
// non-zero trailing bits, so one value has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// privateMembers are JWK members that only a private or symmetric key has
// (RFC 7518 §6.2.2, §6.3.2, §6.4; "priv" is used by some OKP encoders).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

const (
	minRSABits = 2048
	maxRSABits = 8192
)

// publicKey is a checked proof key and its thumbprint.
type publicKey struct {
	key        crypto.PublicKey
	thumbprint string
}

// parseJWK checks raw, the header jwk, against alg and returns the key.
func parseJWK(raw json.RawMessage, alg string) (publicKey, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return publicKey{}, refuse("jwk")
	}
	if kty, _ := stringMember(m, "kty"); kty == "oct" {
		return publicKey{}, refuse("jwk_symmetric")
	}
	for _, name := range privateMembers {
		if _, ok := m[name]; ok {
			return publicKey{}, refuse("jwk_private")
		}
	}
	kty, ok := stringMember(m, "kty")
	if !ok {
		return publicKey{}, refuse("jwk")
	}
	switch kty {
	case "RSA":
		if alg[0] != 'R' && alg[0] != 'P' {
			return publicKey{}, refuse("jwk")
		}
		n, ok1 := intMember(m, "n")
		e, ok2 := intMember(m, "e")
		if !ok1 || !ok2 {
			return publicKey{}, refuse("jwk")
		}
		bits := len(n) * 8
		if bits < minRSABits || new(big.Int).SetBytes(n).BitLen() < minRSABits {
			return publicKey{}, refuse("jwk_weak")
		}
		if bits > maxRSABits || len(e) > 4 {
			return publicKey{}, refuse("jwk")
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
			return publicKey{}, refuse("jwk")
		}
		tp := thumbprint(`{"e":"` + b64.EncodeToString(e) + `","kty":"RSA","n":"` + b64.EncodeToString(n) + `"}`)
		return publicKey{key: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}, thumbprint: tp}, nil
	case "EC":
		var curve elliptic.Curve
		crv, _ := stringMember(m, "crv")
		switch {
		case alg == "ES256" && crv == "P-256":
			curve = elliptic.P256()
		case alg == "ES384" && crv == "P-384":
			curve = elliptic.P384()
		case alg == "ES512" && crv == "P-521":
			curve = elliptic.P521()
		default:
			return publicKey{}, refuse("jwk")
		}
		size := (curve.Params().BitSize + 7) / 8
		x, ok1 := fixedMember(m, "x", size)
		y, ok2 := fixedMember(m, "y", size)
		if !ok1 || !ok2 {
			return publicKey{}, refuse("jwk")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, refuse("jwk")
		}
		tp := thumbprint(`{"crv":"` + crv + `","kty":"EC","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `"}`)
		return publicKey{key: pub, thumbprint: tp}, nil
	case "OKP":
		crv, _ := stringMember(m, "crv")
		if alg != "EdDSA" || crv != "Ed25519" {
			return publicKey{}, refuse("jwk")
		}
		x, ok := fixedMember(m, "x", ed25519.PublicKeySize)
		if !ok {
			return publicKey{}, refuse("jwk")
		}
		tp := thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(x) + `"}`)
		return publicKey{key: ed25519.PublicKey(x), thumbprint: tp}, nil
	default:
		return publicKey{}, refuse("jwk")
	}
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint, base64url without
// padding, of an RSA, ECDSA (P-256, P-384, P-521) or Ed25519 public key:
// the value a DPoP-bound token carries as cnf.jkt and a client sends as
// dpop_jkt. Verify returns the same value in [Proof].Thumbprint.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		e := big.NewInt(int64(k.E)).Bytes()
		return thumbprint(`{"e":"` + b64.EncodeToString(e) + `","kty":"RSA","n":"` + b64.EncodeToString(k.N.Bytes()) + `"}`), nil
	case *ecdsa.PublicKey:
		crv, x, y, err := ecPoint(k)
		if err != nil {
			return "", err
		}
		return thumbprint(`{"crv":"` + crv + `","kty":"EC","x":"` + x + `","y":"` + y + `"}`), nil
	case ed25519.PublicKey:
		return thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(k) + `"}`), nil
	}
	return "", errors.New("dpop: Thumbprint needs an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey")
}

func thumbprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// ecPoint returns the JWK crv, x and y of k.
func ecPoint(k *ecdsa.PublicKey) (crv, x, y string, err error) {
	switch k.Curve {
	case elliptic.P256():
		crv = "P-256"
	case elliptic.P384():
		crv = "P-384"
	case elliptic.P521():
		crv = "P-521"
	default:
		return "", "", "", errors.New("dpop: ECDSA keys must be on P-256, P-384 or P-521")
	}
	raw, err := k.Bytes()
	if err != nil {
		return "", "", "", err
	}
	size := (len(raw) - 1) / 2
	return crv, b64.EncodeToString(raw[1 : 1+size]), b64.EncodeToString(raw[1+size:]), nil
}

func stringMember(m map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := m[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// intMember decodes a base64url unsigned integer that has no leading zero
// octet (RFC 7518 §6.3.1), so its thumbprint is the one the client computed.
func intMember(m map[string]json.RawMessage, name string) ([]byte, bool) {
	s, ok := stringMember(m, name)
	if !ok {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) == 0 || b[0] == 0 {
		return nil, false
	}
	return b, true
}

// fixedMember decodes a base64url octet string of exactly size bytes (EC
// coordinates, RFC 7518 §6.2.1.2; Ed25519 x, RFC 8037 §2).
func fixedMember(m map[string]json.RawMessage, name string, size int) ([]byte, bool) {
	s, ok := stringMember(m, name)
	if !ok {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, false
	}
	return b, true
}

// decodeObject decodes one JSON object into its members, refusing
// duplicate names (RFC 7515 §4 lets a parser reject them, and two readers
// choosing different duplicates is how confusion attacks start) and
// trailing data.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad member name")
		}
		if _, dup := m[name]; dup {
			return nil, errors.New("duplicate member")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return m, nil
}
