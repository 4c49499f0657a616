package auth

// This file binds MCP sessions to the caller who opened them: it mints
// session IDs that carry their owner's MAC and their issue time, checks
// them, and remembers the sessions that ended.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// DefaultSessionLifetime is how long a session ID stays valid after it was
// minted, unless WithSessionLifetime says otherwise. A client whose session
// ID expired gets 404 and opens a new session, as the MCP spec asks.
const DefaultSessionLifetime = 24 * time.Hour

// The memory that remembers ended sessions is bounded per secret and per
// owner: one caller ending many sessions forgets only their own oldest, so
// nobody can make another caller's ended session come back. Past the
// total, the oldest entries of the caller with the most go first. A
// forgotten entry only ever lets the session's own owner back in.
const (
	maxEndedSessions = 1 << 16
	maxEndedPerOwner = 1 << 10
)

// SessionBinding returns the mcp-go option that binds each MCP session
// (protocol 2025-11-25 and older, where Mcp-Session-Id exists) to the caller
// that opened it. The session ID carries its issue time and an HMAC of the
// caller's issuer and subject under secret, so the server keeps no
// per-session memory, and replicas that share secret accept each other's
// sessions. An empty secret means a random one for this process, the same
// one every SessionBinding(nil) and WithProvider without WithSessionSecret
// use.
//
// WithProvider applies it. When you serve the StreamableHTTPServer through
// Handler or Middleware, pass it to server.NewStreamableHTTPServer: the
// middleware then serves a request that names a session (POST, GET stream,
// resumption, DELETE) only when the session is its caller's, not ended and
// not older than its lifetime, and answers anything else like an unknown
// session (404). A server that mints unbound session IDs is refused at the
// first initialize (500, and an error in the log).
//
// Requests of protocol 2026-07-28 carry no session and are authorized one
// by one.
func SessionBinding(secret []byte) server.StreamableHTTPOption {
	return server.WithSessionIdManagerResolver(sessionResolver{b: binderFor(secret)})
}

// binder holds one secret and the sessions minted under it that ended.
type binder struct {
	secret []byte
	kid    string // names the secret inside session IDs, without revealing it

	mu      sync.Mutex
	ended   map[string]time.Time // session ID -> when it would have expired anyway
	byOwner map[string][]string  // owner -> the IDs they ended, oldest first
}

var (
	bindersMu     sync.Mutex // for creating binders, processSecret and retention
	binders       sync.Map   // kid -> *binder; read on every session request
	processSecret []byte
	// retention is the longest session lifetime any middleware of this
	// process enforces: ended sessions are remembered that long.
	retention = DefaultSessionLifetime
)

// binderFor returns the process-wide binder of secret, so that the
// middleware can check the IDs that any SessionBinding of this process
// minted, and every server sharing a secret shares its ended sessions.
func binderFor(secret []byte) *binder {
	bindersMu.Lock()
	defer bindersMu.Unlock()
	if len(secret) == 0 {
		if processSecret == nil {
			processSecret = make([]byte, 32)
			if _, err := rand.Read(processSecret); err != nil {
				panic("auth: no randomness for the session secret: " + err.Error())
			}
		}
		secret = processSecret
	}
	sum := sha256.Sum256(append([]byte("mcp-go-contrib/descope session key id\x00"), secret...))
	kid := base64.RawURLEncoding.EncodeToString(sum[:6])
	if b, ok := binders.Load(kid); ok {
		return b.(*binder)
	}
	b := &binder{secret: append([]byte(nil), secret...), kid: kid,
		ended: map[string]time.Time{}, byOwner: map[string][]string{}}
	binders.Store(kid, b)
	return b
}

// noteLifetime makes ended sessions be remembered at least d.
func noteLifetime(d time.Duration) {
	bindersMu.Lock()
	defer bindersMu.Unlock()
	retention = max(retention, d)
}

func lookupBinder(kid string) *binder {
	b, _ := binders.Load(kid)
	bd, _ := b.(*binder)
	return bd
}

// Session IDs look like "s2.<kid>.<random>.<issued>.<mac>": issued is the
// Unix time in base 36, mac = HMAC-SHA256(secret, random 0 issued 0 owner)[:16].
const sessionIDPrefix = "s2."

// sessionID is a parsed session ID.
type sessionID struct {
	b      *binder
	issued time.Time
	body   string // everything the MAC covers but the owner
	mac    string
}

func parseSessionID(id string) (sessionID, bool) {
	rest, ok := strings.CutPrefix(id, sessionIDPrefix)
	if !ok || len(id) > 128 {
		return sessionID{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 || parts[1] == "" {
		return sessionID{}, false
	}
	secs, err := strconv.ParseInt(parts[2], 36, 64)
	if err != nil || secs <= 0 {
		return sessionID{}, false
	}
	b := lookupBinder(parts[0])
	if b == nil {
		return sessionID{}, false
	}
	return sessionID{b: b, issued: time.Unix(secs, 0), body: macBody(parts[1], parts[2]), mac: parts[3]}, true
}

func (b *binder) mac(body, owner string) string {
	h := hmac.New(sha256.New, b.secret)
	h.Write([]byte(body))
	h.Write([]byte{0})
	h.Write([]byte(owner))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

func (b *binder) generate(owner string, now time.Time) string {
	r := make([]byte, 18)
	if _, err := rand.Read(r); err != nil {
		panic("auth: no randomness for a session ID: " + err.Error())
	}
	random := base64.RawURLEncoding.EncodeToString(r)
	issued := strconv.FormatInt(now.Unix(), 36)
	return sessionIDPrefix + b.kid + "." + random + "." + issued + "." + b.mac(macBody(random, issued), owner)
}

// macBody is what the MAC covers of an ID besides its owner.
func macBody(random, issued string) string { return random + "\x00" + issued }

// ownedBy reports whether the ID was minted for owner.
func (s sessionID) ownedBy(owner string) bool {
	return owner != "" && hmac.Equal([]byte(s.mac), []byte(s.b.mac(s.body, owner)))
}

// end remembers that the session id of owner ended.
func (b *binder) end(id, owner string, issued, now time.Time) {
	bindersMu.Lock()
	until := issued.Add(retention)
	bindersMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.ended[id]; ok || !until.After(now) {
		return
	}
	// Forget what expired anyway, then make room: the owner's own oldest
	// first, and past the total, the oldest of whoever holds the most.
	ids := b.byOwner[owner]
	for len(ids) > 0 && !b.ended[ids[0]].After(now) {
		delete(b.ended, ids[0])
		ids = ids[1:]
	}
	if len(ids) >= maxEndedPerOwner {
		delete(b.ended, ids[0])
		ids = ids[1:]
	}
	b.byOwner[owner] = append(ids, id)
	b.ended[id] = until
	verified.forget(id) // after marking it ended: see sessionUsable
	if len(b.ended) > maxEndedSessions {
		most := owner
		for o, l := range b.byOwner {
			if len(l) > len(b.byOwner[most]) {
				most = o
			}
		}
		l := b.byOwner[most]
		delete(b.ended, l[0])
		b.byOwner[most] = l[1:]
	}
	if len(b.byOwner[owner]) == 0 {
		delete(b.byOwner, owner)
	}
}

func (b *binder) hasEnded(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.ended[id]
	return ok
}

// ownerOf names the caller a session belongs to.
func ownerOf(c *Claims) string {
	if c == nil || c.Subject == "" {
		return ""
	}
	return c.Issuer + "\x00" + c.Subject
}

// sessionUsable reports whether the caller may use the session named id
// now: minted under a known secret for this caller, not ended, and not
// older than lifetime.
//
// Cost: the first request of a session checks the MAC (an HMAC-SHA256);
// the session's later requests find it in verifiedSessions, a map lookup
// (BenchmarkSessionUsable).
func sessionUsable(id string, c *Claims, lifetime time.Duration, now time.Time) bool {
	if c == nil || c.Subject == "" {
		return false
	}
	e := verified.lookup(id)
	if e == nil {
		s, ok := parseSessionID(id)
		if !ok || !s.ownedBy(ownerOf(c)) || s.b.hasEnded(id) {
			return false
		}
		e = &verifiedSession{iss: c.Issuer, sub: c.Subject, issued: s.issued}
		verified.remember(id, e)
		if s.b.hasEnded(id) {
			// Ended while this request checked it: end may have
			// forgotten the ID before it was remembered.
			verified.forget(id)
			return false
		}
	} else if e.iss != c.Issuer || e.sub != c.Subject {
		return false
	}
	return now.Sub(e.issued) < lifetime && !e.issued.After(now.Add(time.Minute))
}

// verifiedSessions remembers the session IDs whose MAC checked out, with
// their owner and issue time. An ID is only ever remembered for the owner
// its MAC names, and forgotten as soon as it ends, so a hit means what a
// full check would. It is bounded: past maxVerifiedSessions it starts over,
// which costs only a MAC per session.
type verifiedSessions struct {
	m sync.Map // session ID -> *verifiedSession
	n atomic.Int64
}

type verifiedSession struct {
	iss, sub string
	issued   time.Time
}

const maxVerifiedSessions = 1 << 16

var verified verifiedSessions

func (v *verifiedSessions) lookup(id string) *verifiedSession {
	e, _ := v.m.Load(id)
	s, _ := e.(*verifiedSession)
	return s
}

func (v *verifiedSessions) remember(id string, e *verifiedSession) {
	if v.n.Add(1) > maxVerifiedSessions {
		v.m.Clear()
		v.n.Store(1)
	}
	v.m.Store(id, e)
}

func (v *verifiedSessions) forget(id string) { v.m.Delete(id) }

type sessionResolver struct{ b *binder }

// ResolveSessionIdManager returns a manager bound to the request's caller.
// mcp-go also calls it with a nil request when it closes sessions itself.
//
// Cost: for a request the middleware let through, nothing is allocated:
// the manager lives in the request's requestInfo. mcp-go asks once per
// request, from the goroutine serving it.
func (s sessionResolver) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return &boundSessions{b: s.b, internal: true}
	}
	ctx := r.Context()
	info := requestInfoFrom(ctx)
	if info == nil {
		return &boundSessions{b: s.b, ctx: ctx}
	}
	if info.sessions.b != s.b {
		info.sessions = boundSessions{b: s.b, ctx: ctx, claims: info.claims}
	}
	return &info.sessions
}

// boundSessions is mcp-go's view of the binding for one request.
type boundSessions struct {
	b        *binder
	ctx      context.Context
	claims   *Claims // the caller; nil when unauthenticated
	internal bool    // mcp-go itself, closing sessions
}

// owner names the caller; empty when unauthenticated.
func (m *boundSessions) owner() string { return ownerOf(m.claims) }

var errSessionNotOwned = errors.New("session not found")

// Generate mints a session ID bound to the caller.
func (m *boundSessions) Generate() string {
	return m.b.generate(m.owner(), time.Now())
}

// Validate accepts only live session IDs minted for this caller.
func (m *boundSessions) Validate(id string) (isTerminated bool, err error) {
	if info := requestInfoFrom(m.ctx); info != nil && info.checkedSession != "" && info.checkedSession == id &&
		strings.HasPrefix(id, sessionIDPrefix+m.b.kid+".") {
		return false, nil // the middleware checked owner, lifetime and end
	}
	s, ok := parseSessionID(id)
	if !ok || s.b != m.b || !s.ownedBy(m.owner()) {
		return false, errSessionNotOwned
	}
	return s.b.hasEnded(id), nil
}

// Terminate lets only the session's owner end it, and remembers that it
// ended.
func (m *boundSessions) Terminate(id string) (isNotAllowed bool, err error) {
	s, ok := parseSessionID(id)
	if !ok || s.b != m.b {
		return !m.internal, nil
	}
	owner := m.owner()
	if !m.internal && !s.ownedBy(owner) {
		return true, nil
	}
	s.b.end(id, owner, s.issued, time.Now())
	return false, nil
}
