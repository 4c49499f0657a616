package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/mcp-go-contrib/descope/auth"
)

// expiringProvider accepts the token "good" with claims that expire at exp.
type expiringProvider struct{ exp time.Time }

func (p expiringProvider) VerifyToken(_ context.Context, token string) (*auth.Claims, error) {
	if token != "good" {
		return nil, auth.Invalid("unknown", nil)
	}
	return &auth.Claims{Subject: "U1", ExpiresAt: p.exp}, nil
}

func (p expiringProvider) ProtectedResource() auth.ProtectedResource {
	return auth.ProtectedResource{URL: "https://mcp.example.com/mcp", MetadataURL: prmURL}
}

func (p expiringProvider) Routes() []auth.Route { return nil }

// deadlineWriter records every read deadline set through it, as net/http's
// own writer would apply them to the connection.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	set []time.Time
}

func (w *deadlineWriter) SetReadDeadline(t time.Time) error {
	w.set = append(w.set, t)
	return nil
}

func (w *deadlineWriter) current() time.Time {
	if len(w.set) == 0 {
		return time.Time{}
	}
	return w.set[len(w.set)-1]
}

// TestReadDeadlines: the connection's read deadline bounds a POST body by
// the body read timeout, then a request that may stream by its token's
// expiry (plus the grace), and is lifted when the request ends; a request
// that answers at once runs without one. Each of these is one update of
// the deadline: the stream's replaces the body's.
func TestReadDeadlines(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	ends := exp.Add(5 * time.Second)
	const wait = 7 * time.Second
	for _, tc := range []struct {
		name, method, body string
		status             int
		// bodyBound: the first update bounds the body read.
		bodyBound bool
		// during is the deadline the next handler runs under (zero: none).
		during time.Time
		// updates counts the deadline changes, the lift at the end included.
		updates int
	}{
		{"tools/call", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`, http.StatusOK, true, ends, 3},
		{"tools/list", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, http.StatusOK, true, time.Time{}, 2},
		{"GET stream", http.MethodGet, "", http.StatusOK, false, ends, 2},
		{"refused task", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tasks/list"}`, http.StatusOK, true, time.Time{}, 2},
		{"refused notification", http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
			http.StatusBadRequest, true, time.Time{}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var during time.Time
			var ran bool
			w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
			next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				ran = true
				during = w.current()
			})
			h := auth.Middleware(expiringProvider{exp: exp}, auth.WithBodyReadTimeout(wait))(next)
			r := httptest.NewRequest(tc.method, "/mcp", strings.NewReader(tc.body))
			if tc.body == "" {
				r.Body = http.NoBody
			}
			r.Header.Set("Authorization", "Bearer good")
			before := time.Now()
			h.ServeHTTP(w, r)

			assert.Equal(t, tc.status, w.Code)
			assert.Len(t, w.set, tc.updates, "%v", w.set)
			if tc.bodyBound && len(w.set) > 0 {
				assert.WithinRange(t, w.set[0], before.Add(wait), time.Now().Add(wait))
			}
			if ran {
				assert.True(t, during.Equal(tc.during), "during the request: %v, want %v", during, tc.during)
			}
			assert.True(t, w.current().IsZero(), "the deadline outlived the request: %v", w.current())
		})
	}
}
