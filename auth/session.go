package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"
)

// SessionBinding returns the mcp-go option that binds each MCP session
// (protocol 2025-11-25 and older, where Mcp-Session-Id exists) to the caller
// that opened it. The session ID carries an HMAC of the caller's issuer and
// subject under secret, so the server keeps no per-session memory, and
// replicas that share secret accept each other's sessions. A request that
// presents a session ID opened by another caller is refused like an
// unknown session (404). An empty secret means a random one for this
// process. WithProvider applies it; use it directly when you serve the
// StreamableHTTPServer through Handler or Middleware.
//
// Requests of protocol 2026-07-28 carry no session and are authorized one
// by one; the binding does not apply to them.
func SessionBinding(secret []byte) server.StreamableHTTPOption {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			panic("auth: no randomness for the session secret: " + err.Error())
		}
	} else {
		secret = append([]byte(nil), secret...)
	}
	return server.WithSessionIdManagerResolver(sessionResolver{secret: secret})
}

type sessionResolver struct{ secret []byte }

// ResolveSessionIdManager returns a manager bound to the request's caller.
// mcp-go also calls it with a nil request when it closes sessions itself.
func (s sessionResolver) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := &boundSessions{secret: s.secret}
	if r == nil {
		m.internal = true
		return m
	}
	if c, ok := ClaimsFromContext(r.Context()); ok {
		m.owner = c.Issuer + "\x00" + c.Subject
	}
	return m
}

// boundSessions mints and checks session IDs of the form
// "<random>.<mac>", mac = HMAC-SHA256(secret, random || 0 || owner)[:16].
type boundSessions struct {
	secret   []byte
	owner    string // issuer and subject of the caller; empty when unauthenticated
	internal bool   // mcp-go itself, closing sessions
}

var errSessionNotOwned = errors.New("session not found")

const sessionIDPrefix = "s1."

func (m *boundSessions) mac(random string) string {
	h := hmac.New(sha256.New, m.secret)
	h.Write([]byte(random))
	h.Write([]byte{0})
	h.Write([]byte(m.owner))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Generate mints a session ID bound to the caller.
func (m *boundSessions) Generate() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic("auth: no randomness for a session ID: " + err.Error())
	}
	random := base64.RawURLEncoding.EncodeToString(b)
	return sessionIDPrefix + random + "." + m.mac(random)
}

// Validate accepts only session IDs minted for this caller.
func (m *boundSessions) Validate(id string) (isTerminated bool, err error) {
	if !m.owns(id) {
		return false, errSessionNotOwned
	}
	return false, nil
}

// Terminate lets only the session's owner end it.
func (m *boundSessions) Terminate(id string) (isNotAllowed bool, err error) {
	if m.internal {
		return false, nil
	}
	return !m.owns(id), nil
}

func (m *boundSessions) owns(id string) bool {
	if m.owner == "" || !strings.HasPrefix(id, sessionIDPrefix) {
		return false
	}
	random, mac, ok := strings.Cut(id[len(sessionIDPrefix):], ".")
	if !ok || random == "" {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(m.mac(random)))
}
