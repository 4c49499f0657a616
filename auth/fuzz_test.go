package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
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
		token, used, err := credential(h, maxBytes, true)
		// Left to a provider that checks token syntax itself, the same
		// header yields the same token, or an unchecked one where the
		// check refused it.
		if token2, used2, err2 := credential(h, maxBytes, false); err == nil && (err2 != nil || token2 != token || used2 != used) {
			t.Fatalf("unchecked: %q %v %v, checked: %q %v", token2, used2, err2, token, used)
		}

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

// FuzzScanMessage checks the scan against encoding/json: on every valid
// JSON body where the scan is sure, id, method, params and the repeated
// flag are what encoding/json decodes, and params.name, params.uri and the
// _meta protocol version are what encoding/json (for the version, mcp-go's
// own reading) gives.
func FuzzScanMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_note","arguments":{"text":"buy milk"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"id":null,"method":"ping"}`,
		`{"ID":1,"Method":"tools/call","PARAMS":{"NAME":"a","name":"b"}}`,
		`{"method":"tools/call","method":"prompts/get","params":{"name":"x\"}"}}`,
		`{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","IO.MODELCONTEXTPROTOCOL/PROTOCOLVERSION":"2025-11-25"}}}`,
		`{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"_META":null}}`,
		`{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"_meta":{}}}`,
		`{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":7}}}`,
		`{"params":{"uri":"file:///a b","name":null}}`,
		`{"method":"t\u006fols/call","params":{"n\u0061me":"x"}}`,
		`{"params":{"name":"caf\u00e9","arguments":[1,{"a":"]}"},[]]}}`,
		`{"params":[1,2],"method":"x"}`,
		`{"params":"str","id":"a\"b"}`,
		` { "id" : 1 , "method" : "ping" } `,
		`{}`, `null`, `[]`, `"x"`, `{"a":1}x`, `{,"a":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast := new(message)
		if !scanMessageInto(body, fast) || !json.Valid(body) {
			return
		}
		ref := new(message)
		if json.Unmarshal(body, ref) != nil {
			// A type error (a method that is not a string): the scan
			// must not have been sure.
			t.Fatalf("scan accepted %q, which encoding/json refuses to decode", body)
		}
		if !bytes.Equal(fast.ID.raw, ref.ID.raw) || fast.Method != ref.Method ||
			!bytes.Equal(fast.Params.raw, ref.Params.raw) || fast.Params.repeated != ref.Params.repeated {
			t.Fatalf("%q: scan id %q method %q params %q (repeated %t); encoding/json id %q method %q params %q (repeated %t)",
				body, fast.ID.raw, fast.Method, fast.Params.raw, fast.Params.repeated, ref.ID.raw, ref.Method, ref.Params.raw, ref.Params.repeated)
		}
		if fast.Params.repeated {
			return // refused before anything reads params
		}
		var n struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(ref.Params.raw, &n)
		var u struct {
			URI string `json:"uri"`
		}
		_ = json.Unmarshal(ref.Params.raw, &u)
		if got := fast.paramsName(); got != n.Name {
			t.Fatalf("%q: params.name %q, encoding/json %q", body, got, n.Name)
		}
		if got := fast.paramsURI(); got != u.URI {
			t.Fatalf("%q: params.uri %q, encoding/json %q", body, got, u.URI)
		}
		var wrapper struct {
			Params struct {
				Meta *mcp.Meta `json:"_meta"`
			} `json:"params"`
		}
		want := ""
		if json.Unmarshal(body, &wrapper) == nil {
			want = wrapper.Params.Meta.ProtocolVersion()
		}
		if got := fast.metaVersion(); got != want {
			t.Fatalf("%q: protocol version %q, mcp-go reads %q", body, got, want)
		}
	})
}
