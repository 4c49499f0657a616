package auth

import (
	"strconv"
	"testing"
	"time"
)

// TestVerifiedSessions: a remembered session answers as a full check
// would: for its owner only, not once ended, not past its lifetime.
func TestVerifiedSessions(t *testing.T) {
	b := binderFor([]byte("memo test secret, thirty-two bytes long"))
	alice := &Claims{Issuer: "https://issuer.example", Subject: "alice"}
	bob := &Claims{Issuer: "https://issuer.example", Subject: "bob"}
	other := &Claims{Issuer: "https://other.example", Subject: "alice"}
	now := time.Now()
	id := b.generate(ownerOf(alice), now)

	steps := []struct {
		name   string
		c      *Claims
		at     time.Time
		end    bool
		usable bool
	}{
		{name: "first request: full check", c: alice, at: now, usable: true},
		{name: "second request: remembered", c: alice, at: now, usable: true},
		{name: "another subject", c: bob, at: now},
		{name: "same subject, another issuer", c: other, at: now},
		{name: "no claims", c: nil, at: now},
		{name: "past the lifetime", c: alice, at: now.Add(time.Hour)},
		{name: "still fine before it", c: alice, at: now.Add(59 * time.Minute), usable: true},
		{name: "ended", c: alice, at: now, end: true},
		{name: "ended, asked again", c: alice, at: now},
	}
	for _, s := range steps {
		if s.end {
			b.end(id, ownerOf(alice), now, now)
		}
		if got := sessionUsable(id, s.c, time.Hour, s.at); got != s.usable {
			t.Fatalf("%s: usable = %t, want %t", s.name, got, s.usable)
		}
	}
	if verified.lookup(id) != nil {
		t.Fatal("an ended session is still remembered")
	}

	// Bob's ID, remembered, is still not Alice's.
	bobID := b.generate(ownerOf(bob), now)
	if !sessionUsable(bobID, bob, time.Hour, now) || sessionUsable(bobID, alice, time.Hour, now) {
		t.Fatal("a remembered ID must serve its owner only")
	}
}

func TestVerifiedSessionsBounded(t *testing.T) {
	var v verifiedSessions
	for i := 0; i < maxVerifiedSessions+10; i++ {
		v.remember("id-"+strconv.Itoa(i), &verifiedSession{})
	}
	n := 0
	v.m.Range(func(any, any) bool { n++; return true })
	if n > maxVerifiedSessions {
		t.Fatalf("%d entries, cap %d", n, maxVerifiedSessions)
	}
}

// BenchmarkSessionUsable: a session's later requests beside the full
// check (parse, HMAC, ended) every request paid before.
func BenchmarkSessionUsable(b *testing.B) {
	bd := binderFor([]byte("bench secret, at least thirty-two bytes"))
	c := &Claims{Issuer: "https://api.descope.com/v1/apps/agentic/P2aAc4T2V93bddihGEx2Ryhc8e5Z/MS35d1Xw1Yo6zozsW7n8BU6xLmnAs", Subject: "U2defaultuser000000000000000"}
	now := time.Now()
	id := bd.generate(ownerOf(c), now)
	b.Run("baseline=full-check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, ok := parseSessionID(id)
			if !ok || !s.ownedBy(ownerOf(c)) || s.b.hasEnded(id) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !sessionUsable(id, c, time.Hour, now) {
				b.Fatal("refused")
			}
		}
	})
}
