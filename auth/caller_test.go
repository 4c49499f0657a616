package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcp-go-contrib/descope/auth/internal/caller"
)

// TestCallerToken: the accepted token reaches this module's providers
// through package caller, and only for requests the middleware let in.
func TestCallerToken(t *testing.T) {
	if _, ok := caller.TokenOf(context.Background()); ok {
		t.Fatal("a token for a context of no request")
	}
	if _, ok := caller.TokenOf(WithClaims(context.Background(), &Claims{Subject: "alice"})); ok {
		t.Fatal("a token for claims put in by hand")
	}
	g := newGuard(boundProvider{}, collect(nil))
	var got string
	var ok bool
	r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer the-token")
	w := httptest.NewRecorder()
	(&guarded{g: g, next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = caller.TokenOf(r.Context())
	})}).ServeHTTP(w, r)
	if !ok || got != "the-token" {
		t.Fatalf("token = %q, %t; status %d", got, ok, w.Code)
	}
}
