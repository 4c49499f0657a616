package auth

// dpop.go is the endpoint's side of DPoP (RFC 9449): which schemes it
// accepts, the proof check of a request sent with the DPoP scheme, the
// refusal of a key-bound token sent as Bearer, and server nonces.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcp-go-contrib/descope/auth/dpop"
)

// DPoPMode says which kinds of access token an endpoint accepts. It is a
// string so that configuration files and environment variables can spell
// it; the empty mode is DPoPAllowed.
type DPoPMode string

const (
	// DPoPAllowed accepts bearer tokens (scheme Bearer) and DPoP-bound
	// tokens with a proof (scheme DPoP). The default.
	DPoPAllowed DPoPMode = "allowed"
	// DPoPRequired accepts only DPoP-bound tokens with a proof: a stolen
	// token is useless without its key. Bearer requests are refused.
	DPoPRequired DPoPMode = "required"
	// DPoPDisabled accepts only bearer tokens; the DPoP scheme is refused.
	DPoPDisabled DPoPMode = "disabled"
)

// DPoP says how an endpoint treats DPoP (RFC 9449). The zero value is the
// default: bearer and DPoP tokens both work, proofs of any algorithm Descope
// accepts, iat within 5 minutes, no server nonces.
//
// Whatever the mode, a token bound to a key (cnf.jkt) sent as Bearer is
// refused: RFC 9449 §7.2 forbids accepting it, since whoever stole it would
// not need the key.
type DPoP struct {
	// Mode picks the accepted schemes (default DPoPAllowed).
	Mode DPoPMode
	// Algorithms lists the accepted proof algorithms, a subset of RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA.
	// Empty means all of them.
	Algorithms []string
	// IATWindow is how far a proof's iat may lie from now, either way
	// (default 5 minutes, as the MCP DPoP profile asks).
	IATWindow time.Duration
	// Nonces makes every proof carry a nonce the server issued (DPoP-Nonce
	// header, RFC 9449 §9), so that a proof cannot be made ahead of time.
	// Clients without a current nonce get 401 error="use_dpop_nonce" and
	// one to retry with. A nonce stays good for 5 to 10 minutes.
	Nonces bool
	// NonceSecret keys the nonces. Replicas behind one load balancer must
	// share it (32 bytes or more) so that each accepts the others' nonces.
	// Empty means a random key per process.
	NonceSecret []byte
}

// Validate reports the first field of d that is wrong, as
// "auth: DPoP.<Field>: <problem>".
func (d DPoP) Validate() error {
	switch d.Mode {
	case "", DPoPAllowed, DPoPRequired, DPoPDisabled:
	default:
		return fmt.Errorf(`auth: DPoP.Mode: %q is not "allowed", "required" or "disabled"`, string(d.Mode))
	}
	supported := allProofAlgorithms()
	for _, a := range d.Algorithms {
		if !slices.Contains(supported, a) {
			return fmt.Errorf("auth: DPoP.Algorithms: %q is not one of %s", a, strings.Join(supported, " "))
		}
	}
	if d.IATWindow < 0 {
		return errors.New("auth: DPoP.IATWindow: must not be negative; zero means 5 minutes")
	}
	if len(d.NonceSecret) > 0 && len(d.NonceSecret) < minNonceSecret {
		return fmt.Errorf("auth: DPoP.NonceSecret: must be at least %d bytes", minNonceSecret)
	}
	return nil
}

// allProofAlgorithms is every algorithm package dpop checks.
func allProofAlgorithms() []string {
	v, _ := dpop.NewVerifier(dpop.Options{}) // the zero Options are valid
	return v.Algorithms()
}

// AlgorithmsSupported is what protected-resource metadata lists as
// dpop_signing_alg_values_supported: the proof algorithms d accepts, or
// none when DPoP is disabled.
func (d DPoP) AlgorithmsSupported() []string {
	if d.Mode == DPoPDisabled {
		return nil
	}
	v, err := dpop.NewVerifier(dpop.Options{Algorithms: d.Algorithms})
	if err != nil {
		return nil
	}
	return v.Algorithms()
}

const (
	minNonceSecret = 32
	// nonceRotation is how often a new nonce is issued; the previous one
	// stays good for one more period.
	nonceRotation = 5 * time.Minute
	headerDPoP    = "Dpop" // canonical, so lookups do not allocate
	headerNonce   = "Dpop-Nonce"
	schemeDPoP    = "DPoP"
)

// Why a credential is refused before any proof is looked at.
var (
	errBoundAsBearer = errors.New("a key-bound token was sent as a bearer token")
	errBearerRefused = errors.New("bearer tokens are refused: DPoP is required")
)

// credScheme is the scheme a request's credentials were sent with.
type credScheme uint8

const (
	usedNone credScheme = iota
	usedBearer
	usedDPoP
)

// dpopGuard holds what the middleware needs to check DPoP requests.
type dpopGuard struct {
	mode     DPoPMode
	verifier *dpop.Verifier // nil: every proof is refused
	nonces   *nonceSource   // nil: nonces are off
	origin   string         // scheme://host of the resource URL
	resource string         // the resource URL, for requests to its path
	path     string
	algs     string // the algs parameter of challenges
}

func newDPoPGuard(d DPoP, resourceURL string, log *slog.Logger) *dpopGuard {
	g := &dpopGuard{mode: d.Mode}
	if g.mode == "" {
		g.mode = DPoPAllowed
	}
	if err := d.Validate(); err != nil {
		// A provider handed over a configuration its constructor did not
		// check: fail closed.
		log.Error("auth: DPoP configuration refused; every DPoP request will be refused", slog.String("error", err.Error()))
		switch g.mode {
		case DPoPAllowed, DPoPRequired, DPoPDisabled:
		default:
			g.mode = DPoPRequired
		}
	}
	u, err := url.Parse(resourceURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		log.Error("auth: the resource URL is not absolute; every DPoP request will be refused")
		return g
	}
	g.origin = u.Scheme + "://" + u.Host
	g.resource = g.origin + u.EscapedPath()
	g.path = u.Path
	opts := dpop.Options{Algorithms: d.Algorithms, IATWindow: d.IATWindow}
	if d.Nonces {
		g.nonces = newNonceSource(d.NonceSecret)
		opts.Nonce = g.nonces.accepts
	}
	if v, err := dpop.NewVerifier(opts); err == nil && g.mode != DPoPDisabled {
		g.verifier = v
		g.algs = `algs="` + strings.Join(v.Algorithms(), " ") + `"`
	}
	return g
}

// check enforces the token's binding: a bound token only with the DPoP
// scheme and a proof by its key, the DPoP scheme only with a bound token.
// On success with nonces on, a client still using an older nonce is handed
// the current one.
//
// Cost: nothing for a bearer request; for a DPoP request one signature
// check and a few small JSON decodes (BenchmarkMiddleware, the
// middleware+dpop+tools-call case: about 0.12 ms, nearly all of it the
// signature).
func (d *dpopGuard) check(w http.ResponseWriter, r *http.Request, token string, used credScheme, c *Claims) error {
	bound := c.KeyThumbprint != ""
	if !bound && c.Raw != nil {
		if _, ok := c.Raw["cnf"]; ok {
			// A confirmation claim the provider did not turn into a
			// key thumbprint (mTLS, or a provider unaware of DPoP):
			// nothing here can check it.
			return Invalid("unchecked_binding", nil)
		}
	}
	if used != usedDPoP {
		if bound {
			return &TokenError{Kind: ErrInvalidToken, Reason: "bound_token_as_bearer", Err: errBoundAsBearer}
		}
		return nil
	}
	if !bound {
		return Invalid("dpop_unbound_token", nil)
	}
	proofs := r.Header[headerDPoP]
	if len(proofs) != 1 {
		return proofRefusal(&dpop.ProofError{Kind: dpop.ErrInvalidProof, Reason: "header_count"})
	}
	if d.verifier == nil {
		return proofRefusal(&dpop.ProofError{Kind: dpop.ErrInvalidProof, Reason: "not_configured"})
	}
	target := d.resource
	if r.URL.Path != d.path {
		target = d.origin + r.URL.EscapedPath()
	}
	p, err := d.verifier.Verify(r.Context(), proofs[0], dpop.Request{
		Method: r.Method, URL: target, AccessToken: token, KeyThumbprint: c.KeyThumbprint,
	})
	if err != nil {
		return proofRefusal(err)
	}
	if d.nonces != nil {
		if current := d.nonces.current(); p.Nonce != current {
			w.Header().Set(headerNonce, current)
		}
	}
	return nil
}

// proofRefusal wraps a refused proof so that logs show its reason.
func proofRefusal(err error) error {
	reason := "dpop"
	var pe *dpop.ProofError
	if errors.As(err, &pe) {
		reason = "dpop_" + pe.Reason
	} else {
		err = &dpop.ProofError{Kind: dpop.ErrInvalidProof, Reason: "request"}
	}
	return &TokenError{Kind: ErrInvalidToken, Reason: reason, Err: err}
}

// nonceSource issues and checks server nonces: an HMAC of the current
// rotation period's number, so that replicas sharing the key agree without
// talking and nothing is stored per client.
type nonceSource struct {
	key    []byte
	now    func() time.Time
	period atomic.Pointer[noncePeriod]
}

type noncePeriod struct {
	n                 int64
	current, previous string
}

func newNonceSource(secret []byte) *nonceSource {
	key := secret
	if len(key) == 0 {
		key = make([]byte, minNonceSecret)
		_, _ = rand.Read(key) // never fails (crypto/rand)
	}
	return &nonceSource{key: append([]byte(nil), key...), now: time.Now}
}

// at returns the nonces of the period now falls in, computed once per
// period.
func (s *nonceSource) at(now time.Time) *noncePeriod {
	n := now.Unix() / int64(nonceRotation/time.Second)
	if p := s.period.Load(); p != nil && p.n == n {
		return p
	}
	p := &noncePeriod{n: n, current: s.mint(n), previous: s.mint(n - 1)}
	s.period.Store(p)
	return p
}

func (s *nonceSource) mint(n int64) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("mcp-go-contrib/descope dpop nonce\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	mac.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

func (s *nonceSource) current() string { return s.at(s.now()).current }

func (s *nonceSource) accepts(_ context.Context, nonce string) bool {
	p := s.at(s.now())
	return subtle.ConstantTimeCompare([]byte(nonce), []byte(p.current)) == 1 ||
		subtle.ConstantTimeCompare([]byte(nonce), []byte(p.previous)) == 1
}
