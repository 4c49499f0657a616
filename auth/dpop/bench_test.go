package dpop

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
)

// BenchmarkVerifyProof is the cost of Verify for an ES256 proof, beside
// Baseline, one plain ES256 verification with the same key: the
// difference is what the proof checks add on top of the signature.
func BenchmarkVerifyProof(b *testing.B) {
	key := testEC()
	b.Run("Verify/ES256", func(b *testing.B) {
		v := newTestVerifier(b, Options{MaxReplayEntries: b.N + 1})
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i] = mustProof(b, key, ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow})
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := v.Verify(b.Context(), proofs[i], testRequest()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Baseline/ES256", func(b *testing.B) {
		p := mustProof(b, key, ProofClaims{Method: "POST", URL: testURL, AccessToken: testToken, IssuedAt: testNow})
		i := strings.LastIndexByte(p, '.')
		sig, _ := b64.DecodeString(p[i+1:])
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			sum := sha256.Sum256([]byte(p[:i]))
			if !ecdsa.Verify(&key.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
				b.Fatal("signature does not verify")
			}
		}
	})
}
