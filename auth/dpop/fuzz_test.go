package dpop

import (
	"errors"
	"testing"
)

// FuzzVerifyProof feeds arbitrary proofs to Verify: it must never panic,
// and every refusal must be a ProofError with a fixed text.
func FuzzVerifyProof(f *testing.F) {
	f.Add(mustProof(f, testEC(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow}))
	f.Add(mustProof(f, testEd(), ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow, Nonce: "n"}))
	f.Add("a.b.c")
	f.Add("")
	v := newTestVerifier(f, Options{})
	f.Fuzz(func(t *testing.T, proof string) {
		_, err := v.Verify(t.Context(), proof, testRequest())
		if err == nil {
			return
		}
		var pe *ProofError
		if !errors.As(err, &pe) {
			t.Fatalf("not a ProofError: %v", err)
		}
		if err.Error() != pe.Kind.Error()+" ("+pe.Reason+")" {
			t.Fatalf("error text %q", err.Error())
		}
	})
}
