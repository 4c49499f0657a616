package descope_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// FuzzVerifyToken feeds token strings to a provider whose keys have loaded
// from a fake Descope. It must never panic; every refusal must be a
// *auth.TokenError of kind ErrInvalidToken (keys are loaded, so never
// Unavailable); and every accepted string must be a seeded valid token or,
// failing that, a canonical compact JWS whose RS256 signature verifies with
// the fake Descope's public key for its kid.
func FuzzVerifyToken(f *testing.F) {
	ds := descopetest.NewServer(descopetest.WithMCPServerURL(hostileResource))
	f.Cleanup(ds.Close)
	p, err := descope.New(descope.Config{
		WellKnownURL: ds.WellKnownURL(),
		ServerURL:    hostileServerURL,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.Close() })

	valid := []string{
		ds.Mint(map[string]any{"aud": hostileResource}),
		ds.Mint(map[string]any{"scope": "mcp:tools notes:read"}),
		ds.Mint(map[string]any{"roles": []string{"admin"}, "tenants": map[string]any{"T1": map[string]any{"roles": []string{"owner"}}}}),
	}
	seeded := map[string]bool{}
	for _, tok := range valid {
		if _, err := p.VerifyToken(context.Background(), tok); err != nil {
			f.Fatalf("a freshly minted token is refused: %v", err)
		}
		seeded[tok] = true
	}

	tok := valid[0]
	h, pl, s := hostileSplit(tok)
	flip := func(seg string, i int) string {
		b := []byte(seg)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	noneHeader := hostileB64([]byte(`{"alg":"none","typ":"JWT"}`))
	seeds := append([]string{}, valid...)
	seeds = append(seeds,
		// Mutated valid tokens.
		flip(h, 5)+"."+pl+"."+s,
		h+"."+flip(pl, 10)+"."+s,
		h+"."+pl+"."+flip(s, 30),
		h+"."+pl+".",
		h+"."+pl,
		h+"."+pl+"."+s+"."+s,
		noneHeader+"."+pl+".",
		noneHeader+"."+pl+"."+s,
		hostileB64([]byte(`{"alg":"HS256","kid":"`+ds.SigningKeyID()+`"}`))+"."+pl+"."+s,
		hostileB64([]byte(`{"alg":"RS256","kid":"forged"}`))+"."+pl+"."+s,
		hostileB64([]byte(`{"alg":"RS256"}`))+"."+pl+"."+s,
		h+"=."+pl+"."+s,
		h+"."+pl+"."+s[:len(s)-1],
		h+"."+pl+"."+s[:20]+"\n"+s[20:],
		tok+tok,
		tok[:len(tok)/2],
		strings.ReplaceAll(tok, "-", "+"),
		// Garbage.
		"",
		".",
		"..",
		"...",
		"a.b.c",
		"eyJ.eyJ.eyJ",
		"eyJhbGciOiJSUzI1NiJ9.e30.",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"null.null.null",
		hostileB64([]byte(`[`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`]`))+"."+pl+"."+s,
		strings.Repeat("A", 1000),
		"\x00\xff.\x00.\x00",
	)
	for _, seed := range seeds {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := p.VerifyToken(context.Background(), token)
		if err != nil {
			if claims != nil {
				t.Fatalf("refusal %v came with claims", err)
			}
			var te *auth.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("refusal is %T (%v), not a *auth.TokenError", err, err)
			}
			if te.Kind != auth.ErrInvalidToken || !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("refusal of kind %v, want ErrInvalidToken: %v", te.Kind, err)
			}
			if te.Reason == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if claims == nil || claims.Subject == "" {
			t.Fatalf("accepted without a subject: %+v", claims)
		}
		if seeded[token] {
			return
		}
		if fuzzSignedBy(ds, token) {
			return
		}
		t.Fatalf("accepted %q, which is neither a minted token nor signed by the fake Descope", token)
	})
}

// fuzzSignedBy reports whether token is a canonical compact JWS (three
// unpadded base64url segments, no other bytes) with alg RS256 whose
// signature verifies with ds's public key for its kid.
func fuzzSignedBy(ds *descopetest.Server, token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, seg := range parts {
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	strict := base64.RawURLEncoding.Strict()
	hb, err := strict.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(hb, &header) != nil || header.Alg != "RS256" {
		return false
	}
	pub := ds.PublicKey(header.Kid)
	if pub == nil {
		return false
	}
	sig, err := strict.DecodeString(parts[2])
	if err != nil {
		return false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
}
