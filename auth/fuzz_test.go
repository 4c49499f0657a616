package auth

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// fuzzBearerRE is an independent statement of what credential must
// accept: the scheme "Bearer" or "DPoP" in any ASCII case, one or more
// spaces, then an RFC 6750 b64token and nothing else.
var fuzzBearerRE = regexp.MustCompile(`^(?i:(bearer|dpop)) +([A-Za-z0-9\-._~+/]+=*)$`)

// fuzzIsBearerScheme reports whether the text before the first space is
// "bearer" or "dpop" in ASCII case-insensitive form.
func fuzzIsBearerScheme(v string) bool {
	scheme, _, _ := strings.Cut(v, " ")
	lower := strings.ToLower(scheme)
	return (lower == "bearer" || lower == "dpop") && len(scheme) == len(lower) && fuzzIsASCII(scheme)
}

func fuzzIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzBearerToken checks the Authorization header parser against an
// independent regular expression: it never panics, returns a token exactly
// when the header is "Bearer" + spaces + a b64token within the size cap, and
// otherwise refuses with a *TokenError of kind ErrNoToken or ErrInvalidToken.
//
// headers picks how many Authorization values the request carries
// (headers%3: none, one, two); maxBytes is the middleware's cap.
func FuzzBearerToken(f *testing.F) {
	seeds := []struct {
		value    string
		headers  uint8
		maxBytes int
	}{
		{"Bearer abc.def.ghi", 1, DefaultMaxHeaderBytes},
		{"bearer abc", 1, DefaultMaxHeaderBytes},
		{"BEARER abc", 1, DefaultMaxHeaderBytes},
		{"bEaReR abc", 1, DefaultMaxHeaderBytes},
		{"Bearer    abc", 1, DefaultMaxHeaderBytes},
		{"Bearer abc==", 1, DefaultMaxHeaderBytes},
		{"Bearer abc=d", 1, DefaultMaxHeaderBytes},
		{"Bearer =", 1, DefaultMaxHeaderBytes},
		{"Bearer ==", 1, DefaultMaxHeaderBytes},
		{"Bearer a-._~+/b", 1, DefaultMaxHeaderBytes},
		{"Bearer", 1, DefaultMaxHeaderBytes},
		{"Bearer ", 1, DefaultMaxHeaderBytes},
		{"Bearer   ", 1, DefaultMaxHeaderBytes},
		{"Bearer abc def", 1, DefaultMaxHeaderBytes},
		{"Bearer abc ", 1, DefaultMaxHeaderBytes},
		{"Bearer\tabc", 1, DefaultMaxHeaderBytes},
		{"Bearer \tabc", 1, DefaultMaxHeaderBytes},
		{"Bearer abc\x00", 1, DefaultMaxHeaderBytes},
		{"Bearer abc\r\nX-Evil: 1", 1, DefaultMaxHeaderBytes},
		{"Bearer ab;c", 1, DefaultMaxHeaderBytes},
		{"Bearer a%2Eb", 1, DefaultMaxHeaderBytes},
		{"Bearer \u00e9", 1, DefaultMaxHeaderBytes},
		{"Bearer abc\u202e", 1, DefaultMaxHeaderBytes},
		{"Bearer\u00a0abc", 1, DefaultMaxHeaderBytes},
		{"Bearerabc", 1, DefaultMaxHeaderBytes},
		{" Bearer abc", 1, DefaultMaxHeaderBytes},
		{"Basic dXNlcjpwYXNz", 1, DefaultMaxHeaderBytes},
		{"Bearer abc", 0, DefaultMaxHeaderBytes},
		{"Bearer abc", 2, DefaultMaxHeaderBytes},
		{"Bearer abc", 1, 10},
		{"Bearer abc", 1, 9},
		{"DPoP abc", 1, DefaultMaxHeaderBytes},
		{"dpop  abc=", 1, DefaultMaxHeaderBytes},
		{"Bearer abc", 1, 0},
		{"Bearer abc", 1, -1},
		{"", 1, DefaultMaxHeaderBytes},
		{"", 1, 0},
		{"Bearer " + strings.Repeat("a", 100), 1, 64},
	}
	for _, s := range seeds {
		f.Add(s.value, s.headers, s.maxBytes)
	}
	f.Fuzz(func(t *testing.T, value string, headers uint8, maxBytes int) {
		h := http.Header{}
		n := int(headers % 3)
		for i := 0; i < n; i++ {
			h[headerAuthorize] = append(h[headerAuthorize], value)
		}
		token, used, err := credential(h, maxBytes)

		if err != nil {
			if token != "" {
				t.Fatalf("refusal %v came with a token %q", err, token)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("refusal is %T (%v), not a *TokenError", err, err)
			}
			if te.Kind != ErrNoToken && te.Kind != ErrInvalidToken {
				t.Fatalf("refusal of kind %v", te.Kind)
			}
			if !errors.Is(err, te.Kind) {
				t.Fatalf("errors.Is(err, its own kind) is false for %v", err)
			}
		}

		switch {
		case n == 0:
			if err == nil || !errors.Is(err, ErrNoToken) {
				t.Fatalf("no header: got %q, %v; want ErrNoToken", token, err)
			}
			return
		case n > 1:
			if err == nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("two headers: got %q, %v; want ErrInvalidToken", token, err)
			}
			return
		case len(value) > maxBytes:
			if err == nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("%d-byte header over a cap of %d: got %q, %v; want ErrInvalidToken", len(value), maxBytes, token, err)
			}
			return
		}

		m := fuzzBearerRE.FindStringSubmatch(value)
		if m == nil {
			if err == nil {
				t.Fatalf("accepted %q from %q, which is not Bearer + b64token", token, value)
			}
			want := ErrInvalidToken
			if !fuzzIsBearerScheme(value) {
				want = ErrNoToken
			}
			if !errors.Is(err, want) {
				t.Fatalf("%q: refused as %v, want %v", value, err, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused a well-formed header %q: %v", value, err)
		}
		if token != m[2] {
			t.Fatalf("%q: token %q, want %q", value, token, m[2])
		}
		if want := map[string]credScheme{"bearer": usedBearer, "dpop": usedDPoP}[strings.ToLower(m[1])]; used != want {
			t.Fatalf("%q: scheme %d, want %d", value, used, want)
		}
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			t.Fatalf("%q: token %q is empty or holds white space", value, token)
		}
		if !strings.HasSuffix(value, token) || len(token) > len(value)-len(m[1])-1 {
			t.Fatalf("%q: token %q is not the tail of the header", value, token)
		}
	})
}
