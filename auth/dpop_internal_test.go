package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcp-go-contrib/descope/auth/dpop"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestNonceRotation(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, b, other := newNonceSource(secret), newNonceSource(secret), newNonceSource(nil)
	for _, s := range []*nonceSource{a, b, other} {
		s.now = c.now
	}
	n0 := a.current()
	if n0 != b.current() {
		t.Fatal("sources sharing a secret disagree")
	}
	if n0 == other.current() || other.accepts(context.Background(), n0) {
		t.Fatal("a source with its own random secret accepts another's nonce")
	}
	c.t = c.t.Add(nonceRotation)
	n1 := a.current()
	if n1 == n0 {
		t.Fatal("no new nonce after a rotation period")
	}
	if !a.accepts(context.Background(), n0) || !a.accepts(context.Background(), n1) {
		t.Fatal("the current and the previous nonce must both be accepted")
	}
	c.t = c.t.Add(nonceRotation)
	if a.accepts(context.Background(), n0) {
		t.Fatal("a nonce two periods old is still accepted")
	}
	for _, bad := range []string{"", "x", n1[:len(n1)-1], n1 + "A"} {
		if a.accepts(context.Background(), bad) {
			t.Fatalf("accepted %q", bad)
		}
	}
}

type boundProvider struct{ jkt string }

func (p boundProvider) VerifyToken(context.Context, string) (*Claims, error) {
	return &Claims{Subject: "alice", KeyThumbprint: p.jkt}, nil
}
func (p boundProvider) ProtectedResource() ProtectedResource {
	return ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		DPoP: DPoP{Nonces: true}}
}
func (p boundProvider) Routes() []Route { return nil }

// TestNonceHandedOnWhenOlder: a client whose proof carries the previous
// nonce gets in and is handed the current one; a client on the current
// nonce is handed nothing.
func TestNonceHandedOnWhenOlder(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, _ := dpop.Thumbprint(key.Public())
	g := newGuard(boundProvider{jkt: jkt}, collect([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}))
	c := &clock{t: time.Now()}
	g.dpop.nonces.now = c.now
	old := g.dpop.nonces.current()
	c.t = c.t.Add(nonceRotation)
	current := g.dpop.nonces.current()

	for _, tt := range []struct{ nonce, handed string }{{old, current}, {current, ""}} {
		p, err := dpop.NewProof(key, dpop.ProofClaims{Method: http.MethodGet, URL: "https://mcp.example.com/mcp", AccessToken: "tok", Nonce: tt.nonce})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.Header.Set("Authorization", "DPoP tok")
		r.Header.Set("DPoP", p)
		w := httptest.NewRecorder()
		(&guarded{g: g, next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })}).ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("nonce %q: status %d, body %s", tt.nonce, w.Code, w.Body)
		}
		if got := w.Header().Get("DPoP-Nonce"); got != tt.handed {
			t.Fatalf("nonce %q: handed %q, want %q", tt.nonce, got, tt.handed)
		}
	}
}
