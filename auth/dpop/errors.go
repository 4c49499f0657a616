package dpop

import "errors"

// The kinds of refusal. Every error [Verifier.Verify] returns for a bad
// proof is a [*ProofError] whose Kind is one of these, matched with
// errors.Is. ErrReplay, ErrCacheFull and ErrKeyMismatch also match
// ErrInvalidProof, so a caller that only knows ErrInvalidProof still refuses
// them.
var (
	// ErrInvalidProof: the proof must not be accepted (401 with
	// error="invalid_dpop_proof", RFC 9449 §7.1).
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrUseNonce: nonces are required and the proof carries none, or one
	// the server no longer accepts. Answer 401 with error="use_dpop_nonce"
	// and a fresh DPoP-Nonce header (RFC 9449 §9). It does not match
	// ErrInvalidProof: the client did nothing wrong yet.
	ErrUseNonce = errors.New("dpop: nonce required")
	// ErrReplay: a proof with this jti and key was already accepted within
	// the iat window.
	ErrReplay = errors.New("dpop: proof replayed")
	// ErrCacheFull: the replay cache is at its cap, so the proof is refused
	// rather than a live jti forgotten. Callers may answer 503 with
	// Retry-After instead of 401.
	ErrCacheFull = errors.New("dpop: replay cache full")
	// ErrKeyMismatch: the proof's key is not the key the access token is
	// bound to (Request.KeyThumbprint, the token's cnf.jkt). RFC 9449 §7.1
	// lets the caller answer error="invalid_token" for it.
	ErrKeyMismatch = errors.New("dpop: proof key does not match the token binding")
)

// ProofError is a refused proof. Kind is one of the sentinel errors above;
// Reason is a fixed short code for logs, one of: "size", "malformed",
// "typ", "alg", "header", "jwk", "jwk_private", "jwk_symmetric",
// "jwk_weak", "signature", "jti", "htm", "htu", "iat", "ath", "nonce",
// "nonce_missing", "nonce_stale", "jkt", "replay", "cache_full". Neither
// field ever holds text taken from the proof, so the error is safe to log;
// it should still not be sent to clients, who get only the RFC 9449 error
// code.
type ProofError struct {
	Kind   error
	Reason string
}

// Error describes the refusal for logs.
func (e *ProofError) Error() string { return e.Kind.Error() + " (" + e.Reason + ")" }

// Is reports whether target is the kind of this refusal, or ErrInvalidProof
// for the kinds that are invalid proofs too.
func (e *ProofError) Is(target error) bool {
	if target == e.Kind {
		return true
	}
	return target == ErrInvalidProof && e.Kind != ErrUseNonce
}

func refuse(reason string) error { return &ProofError{Kind: ErrInvalidProof, Reason: reason} }
