package dpop

// verify.go checks a DPoP proof against the request it came with, as
// RFC 9449 §4.3 lists: form, header, key, signature, claims, time, replay.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxProofSize bounds a proof in bytes before any decoding; an 8192-bit
// RSA key and its signature fit with room to spare.
const MaxProofSize = 8192

const (
	maxJTI               = 256
	defaultWindow        = 5 * time.Minute
	defaultReplayEntries = 100_000
)

// supportedAlgorithms are the asymmetric JWS algorithms this package can
// check, in the order challenges and metadata list them. It is also the
// default allow-list (the set Descope accepts).
var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// refusedHeaders are JOSE header members a proof must not carry: crit asks
// for processing this verifier does not do, and the rest point at a key
// other than the jwk the proof is bound to.
var refusedHeaders = []string{"crit", "kid", "jku", "x5u", "x5c", "x5t", "x5t#S256", "b64", "zip", "enc"}

// Options configure a [Verifier]. The zero value is the secure default.
type Options struct {
	// Algorithms is the allow-list of proof algorithms, a subset of RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA.
	// Empty means all of them.
	Algorithms []string
	// IATWindow is how far a proof's iat may lie from now, in either
	// direction. Zero means 5 minutes, as the MCP DPoP profile (SEP-1932)
	// asks. It is also how long an accepted jti is remembered.
	IATWindow time.Duration
	// MaxReplayEntries caps the jtis remembered at once. Zero means
	// 100,000. When full, new proofs are refused with ErrCacheFull until
	// old entries expire.
	MaxReplayEntries int
	// Nonce, when set, makes the nonce claim required: Verify refuses with
	// ErrUseNonce unless the proof carries a nonce for which Nonce returns
	// true. The caller issues nonces (DPoP-Nonce) and decides when they go
	// stale.
	Nonce func(ctx context.Context, nonce string) bool
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// Verifier checks DPoP proofs (RFC 9449 §4.3) and remembers accepted ones
// to refuse replays. It is safe for concurrent use; use one per resource
// server so that all requests share its replay cache.
type Verifier struct {
	algs   []string
	window time.Duration
	nonce  func(context.Context, string) bool
	now    func() time.Time
	replay *replayCache
}

// NewVerifier returns a Verifier for o, or an error naming the field of o
// that is wrong.
func NewVerifier(o Options) (*Verifier, error) {
	v := &Verifier{window: o.IATWindow, nonce: o.Nonce, now: o.Now}
	if len(o.Algorithms) == 0 {
		v.algs = slices.Clone(supportedAlgorithms)
	}
	for _, a := range o.Algorithms {
		if !slices.Contains(supportedAlgorithms, a) {
			return nil, fmt.Errorf("dpop: Options.Algorithms: %q is not one of %s", a, strings.Join(supportedAlgorithms, " "))
		}
		if !slices.Contains(v.algs, a) {
			v.algs = append(v.algs, a)
		}
	}
	switch {
	case o.IATWindow < 0:
		return nil, errors.New("dpop: Options.IATWindow must not be negative; zero means 5 minutes")
	case o.IATWindow == 0:
		v.window = defaultWindow
	}
	switch {
	case o.MaxReplayEntries < 0:
		return nil, errors.New("dpop: Options.MaxReplayEntries must not be negative; zero means 100000")
	case o.MaxReplayEntries == 0:
		v.replay = newReplayCache(defaultReplayEntries)
	default:
		v.replay = newReplayCache(o.MaxReplayEntries)
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Algorithms returns the allowed proof algorithms, for the algs parameter
// of a DPoP challenge and dpop_signing_alg_values_supported in metadata.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// Request is what a proof must match.
type Request struct {
	// Method is the HTTP method of the request, compared exactly with htm.
	Method string
	// URL is the absolute URL the request was sent to, compared with htu
	// after dropping query and fragment and normalizing per RFC 3986 §6.2.2
	// and §6.2.3. Build it from configuration (the resource's public URL
	// plus the request path), never from Host, X-Forwarded-* or Forwarded
	// headers: a client controls those, and with them the URL its proof
	// must match.
	URL string
	// AccessToken, when not empty, must hash to the proof's ath claim.
	AccessToken string
	// KeyThumbprint, when not empty, is the access token's cnf.jkt; the
	// proof's key must have this RFC 7638 thumbprint, or Verify refuses with
	// ErrKeyMismatch.
	KeyThumbprint string
}

// Proof is an accepted proof.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: compare it with the access token's cnf.jkt if
	// Request.KeyThumbprint was not set.
	Thumbprint string
	// Algorithm is the proof's alg.
	Algorithm string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Nonce is the proof's nonce, when Options.Nonce is set: a server that
	// rotates nonces sends a fresh DPoP-Nonce when this one is not its
	// newest.
	Nonce string
}

// Verify checks proof, the value of the request's single DPoP header,
// against r, and records its jti. It returns a [*ProofError] for a proof
// that must be refused; any other error means r itself is unusable (a
// caller bug). A proof is only recorded once every other check passed, so
// refused proofs never fill the replay cache.
//
// Cost: one signature verification plus a few small JSON decodes; see
// BenchmarkVerifyProof.
func (v *Verifier) Verify(ctx context.Context, proof string, r Request) (Proof, error) {
	want, err := canonicalURL(r.URL)
	if err != nil {
		return Proof{}, errors.New("dpop: Request.URL must be an absolute http or https URL")
	}
	if len(proof) > MaxProofSize {
		return Proof{}, refuse("size")
	}
	h64, rest, ok1 := strings.Cut(proof, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return Proof{}, refuse("malformed")
	}
	header, err1 := decodeSegment(h64)
	claims, err2 := decodeSegment(p64)
	sig, err3 := b64.DecodeString(s64)
	if err1 != nil || err2 != nil || err3 != nil || len(sig) == 0 {
		return Proof{}, refuse("malformed")
	}

	if typ, ok := stringMember(header, "typ"); !ok || typ != "dpop+jwt" {
		return Proof{}, refuse("typ")
	}
	alg, ok := stringMember(header, "alg")
	if !ok || !slices.Contains(v.algs, alg) {
		return Proof{}, refuse("alg")
	}
	for _, name := range refusedHeaders {
		if _, ok := header[name]; ok {
			return Proof{}, refuse("header")
		}
	}
	rawKey, ok := header["jwk"]
	if !ok {
		return Proof{}, refuse("jwk")
	}
	key, err := parseJWK(rawKey, alg)
	if err != nil {
		return Proof{}, err
	}
	if !verifySignature(alg, key.key, proof[:len(h64)+1+len(p64)], sig) {
		return Proof{}, refuse("signature")
	}

	jti, ok := stringMember(claims, "jti")
	if !ok || jti == "" || len(jti) > maxJTI {
		return Proof{}, refuse("jti")
	}
	if htm, ok := stringMember(claims, "htm"); !ok || htm != r.Method {
		return Proof{}, refuse("htm")
	}
	htu, ok := stringMember(claims, "htu")
	if !ok {
		return Proof{}, refuse("htu")
	}
	if got, err := canonicalURL(htu); err != nil || got != want {
		return Proof{}, refuse("htu")
	}
	now := v.now()
	iat, ok := numericDate(claims["iat"])
	if !ok {
		return Proof{}, refuse("iat")
	}
	if iat.Before(now.Add(-v.window)) || iat.After(now.Add(v.window)) {
		return Proof{}, refuse("iat")
	}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		if ath, ok := stringMember(claims, "ath"); !ok || ath != b64.EncodeToString(sum[:]) {
			return Proof{}, refuse("ath")
		}
	}
	var nonce string
	if v.nonce != nil {
		_, present := claims["nonce"]
		var ok bool
		nonce, ok = stringMember(claims, "nonce")
		switch {
		case !present:
			return Proof{}, &ProofError{Kind: ErrUseNonce, Reason: "nonce_missing"}
		case !ok:
			return Proof{}, refuse("nonce")
		case !v.nonce(ctx, nonce):
			return Proof{}, &ProofError{Kind: ErrUseNonce, Reason: "nonce_stale"}
		}
	}
	if r.KeyThumbprint != "" && r.KeyThumbprint != key.thumbprint {
		return Proof{}, &ProofError{Kind: ErrKeyMismatch, Reason: "jkt"}
	}
	// Remember the jti until no clock could accept this iat any more.
	if err := v.replay.add(key.thumbprint, jti, iat.Add(v.window), now); err != nil {
		return Proof{}, err
	}
	return Proof{Thumbprint: key.thumbprint, Algorithm: alg, IssuedAt: iat, Nonce: nonce}, nil
}

func decodeSegment(s string) (map[string]json.RawMessage, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return decodeObject(b)
}

// numericDate decodes a JSON number of seconds since the epoch (RFC 7519
// §2), refusing anything else and values no clock will reach.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || raw[0] == '"' {
		return time.Time{}, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// verifySignature checks sig over signed with pub, whose type parseJWK
// matched to alg.
func verifySignature(alg string, pub crypto.PublicKey, signed string, sig []byte) bool {
	if alg == "EdDSA" {
		return ed25519.Verify(pub.(ed25519.PublicKey), []byte(signed), sig)
	}
	var h hash.Hash
	var id crypto.Hash
	switch alg[2:] {
	case "256":
		h, id = sha256.New(), crypto.SHA256
	case "384":
		h, id = sha512.New384(), crypto.SHA384
	default:
		h, id = sha512.New(), crypto.SHA512
	}
	h.Write([]byte(signed))
	digest := h.Sum(nil)
	switch alg[:2] {
	case "RS":
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), id, digest, sig) == nil
	case "PS":
		return rsa.VerifyPSS(pub.(*rsa.PublicKey), id, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	default: // ES: the JWS form is r || s, each the curve's size (RFC 7518 §3.4).
		k := pub.(*ecdsa.PublicKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
}
