package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// TestTokenRefresh: access tokens live 2s and the server allows no clock
// skew. Each client signs in, calls whoami, waits until its access token has
// expired, and calls whoami again: it must refresh (a refresh_token grant,
// no new authorization) and the second call must succeed with the new token.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	const lifetime = 2 * time.Second
	s := setup{
		layout: rootLayout,
		leeway: -1, // none: an expired token is refused at once
		ds:     []descopetest.Option{descopetest.WithTokenLifetime(lifetime)},
	}
	// exp has a resolution of one second.
	const wait = lifetime + 1500*time.Millisecond

	t.Run("mcp-go/"+eraModern, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "mcp-go/"+eraModern+" (refresh)", e)
		c := r.runMCPGo(mcpGoOptions{era: eraModern})
		time.Sleep(wait)
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		r.whoamiMCPGo(ctx, c) // mcp-go refreshes before sending, from the token's expiry
		r.checkRefresh(r.log.all())
	})

	t.Run("go-sdk/"+eraModern, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "go-sdk/"+eraModern+" (refresh)", e)
		cs := r.runGoSDK(goSDKOptions{era: eraModern})
		time.Sleep(wait)
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		r.whoamiGoSDK(ctx, cs) // the oauth2 token source refreshes before sending
		r.checkRefresh(r.log.all())
	})

	t.Run("ts-sdk/"+eraLegacy, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "ts-sdk/"+eraLegacy+" (refresh)", e)
		res := r.runTS(tsOptions{WaitMs: int(wait / time.Millisecond)})
		r.okTS(res, 2)
		r.checkStages(res.Trace, eraLegacy)
		r.checkEra(eraLegacy)
		first := r.checkRefresh(res.Trace)
		// The TypeScript SDK refreshes only when refused: the expired
		// token must have met the exact invalid_token challenge.
		r.expectRefused("tools/call whoami with the expired token", first.Token, http.StatusUnauthorized, e.challengeInvalidToken())
	})
}

// checkRefresh checks, in a client's exchanges, that after the first
// successful whoami the client refreshed its token (refresh_token grant, 200,
// no new authorization) and then called whoami successfully with the new
// token. It returns the first whoami exchange.
func (r *run) checkRefresh(xs []exchange) exchange {
	r.t.Helper()
	isCall := func(x exchange) bool { return x.isMCP(r.env, "tools/call") }
	i := slices.IndexFunc(xs, isCall)
	if i < 0 {
		r.failf("token refresh", "no successful tools/call")
	}
	first, rest := xs[i], xs[i+1:]
	j := slices.IndexFunc(rest, func(x exchange) bool {
		return x.Method == http.MethodPost && x.URL == r.env.as.TokenEndpoint && x.Grant == "refresh_token"
	})
	if j < 0 {
		r.failf("token refresh", "the client never asked for a refresh_token grant after the first call")
	}
	if rest[j].Status != http.StatusOK {
		r.failf("token refresh", "the refresh_token grant was answered %d: %s", rest[j].Status, rest[j].Body)
	}
	if k := slices.IndexFunc(rest, func(x exchange) bool {
		return x.Method == http.MethodGet && strings.HasPrefix(x.URL, r.env.as.AuthorizationEndpoint+"?")
	}); k >= 0 {
		r.failf("token refresh", "the client authorized again instead of refreshing")
	}
	second := slices.IndexFunc(rest[j+1:], isCall)
	if second < 0 {
		r.failf("tools/call whoami after refresh", "no successful tools/call after the refresh")
	}
	if tok := rest[j+1+second].Token; tok == first.Token || tok == "" {
		r.failf("tools/call whoami after refresh", "the call after the refresh used token %q, the first one used %q", tok, first.Token)
	}
	return first
}

// foreignAudience is a resource URL that is not the server's.
const foreignAudience = "https://other.example.com/mcp"

// TestForeignAudience: each client starts with a token the fake Descope
// signed properly, but for another resource (aud = another URL only). The
// server refuses it with 401 invalid_token; the client follows the
// challenge's resource_metadata, signs in and calls whoami.
func TestForeignAudience(t *testing.T) {
	t.Parallel()
	foreign := func(e *env) (token, fp string) {
		token = e.ds.Mint(map[string]any{"aud": []string{foreignAudience}})
		return token, fingerprint("Bearer " + token)
	}

	t.Run("mcp-go/"+eraModern, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, setup{layout: rootLayout})
		token, fp := foreign(e)
		r := newRun(t, "mcp-go/"+eraModern+" (foreign audience)", e)
		r.runMCPGo(mcpGoOptions{era: eraModern, storedToken: token, challenge: e.challengeInvalidToken()})
		r.expectRefused(connectStep(eraModern)+" with the foreign token", fp, http.StatusUnauthorized, e.challengeInvalidToken())
	})

	t.Run("go-sdk/"+eraModern, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, setup{layout: rootLayout})
		token, fp := foreign(e)
		r := newRun(t, "go-sdk/"+eraModern+" (foreign audience)", e)
		r.runGoSDK(goSDKOptions{era: eraModern, initialToken: token})
		r.expectRefused(connectStep(eraModern)+" with the foreign token", fp, http.StatusUnauthorized, e.challengeInvalidToken())
	})

	t.Run("ts-sdk/"+eraLegacy, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, setup{layout: rootLayout})
		token, fp := foreign(e)
		r := newRun(t, "ts-sdk/"+eraLegacy+" (foreign audience)", e)
		res := r.runTS(tsOptions{Token: token})
		r.okTS(res, 1)
		r.checkStages(res.Trace, eraLegacy)
		r.checkEra(eraLegacy)
		r.expectRefused("initialize with the foreign token", fp, http.StatusUnauthorized, e.challengeInvalidToken())
	})
}

// TestInsufficientScope: the server requires notes:read. Each client gets a
// token without it and must meet the exact 403 insufficient_scope challenge.
func TestInsufficientScope(t *testing.T) {
	t.Parallel()
	s := setup{layout: rootLayout, requiredScopes: []string{"notes:read"}}
	challenge := func(e *env) string {
		return `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="notes:read", resource_metadata="` + e.prmURL + `"`
	}

	t.Run("mcp-go/"+eraModern, func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "mcp-go/"+eraModern+" (insufficient scope)", e)
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		o := mcpGoOptions{era: eraModern, scopes: []string{"openid"}} // mcp-go asks for OAuthConfig.Scopes only
		c := r.newMCPGo(ctx, o)
		r.signInMCPGo(ctx, c, o)
		mark := seq.Load()
		var initErr error
		r.step(connectStep(eraModern)+" with a token lacking notes:read", func() error {
			_, initErr = c.Initialize(ctx, initializeRequest())
			if initErr == nil {
				return fmt.Errorf("succeeded with a token lacking the required scope")
			}
			return nil
		})
		r.expectAnswer(connectStep(eraModern)+" with a token lacking notes:read", mark, http.StatusForbidden, challenge(e))
		if _, ok := e.journal.find(mark, func(x exchange) bool {
			return x.RPC == "server/discover" && x.Protocol == eraModern && x.Status == http.StatusForbidden
		}); !ok {
			r.failf(connectStep(eraModern)+" with a token lacking notes:read", "the 2026-07-28 server/discover was not the request refused with 403")
		}
		// mcp-go v1.2.1 has no step-up authorization: it falls back to the
		// 2025-11-25 initialize, which meets the same 403, and reports it
		// as a legacy SSE server.
		t.Logf("mcp-go Initialize returned: %v", initErr)
	})

	// The Go SDK authorizes once per request. Its server/discover probe
	// spends that on the 401 and meets the 403 on the retry, so it falls
	// back to the 2025-11-25 handshake, where the 403 to initialize gets
	// its step-up authorization; the call runs in that era.
	t.Run("go-sdk/"+eraLegacy+"/after-discover-refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "go-sdk/"+eraLegacy+"/after-discover-refused (insufficient scope)", e)
		first := true
		filter := func(discovered []string) []string {
			if first {
				// The first sign-in asks without notes:read.
				first = false
				return []string{"openid"}
			}
			return discovered
		}
		r.runGoSDK(goSDKOptions{era: eraModern, wantEra: eraLegacy, scopeFilter: filter})
		xs := r.log.all()
		mark := r.checkScopeAsked(xs, "openid", 0)
		r.expectAnswer("server/discover with a token lacking notes:read", mark, http.StatusForbidden, challenge(e))
		r.checkScopeAsked(xs, "openid notes:read", mark)
	})

	// The TypeScript SDK signs in asking only for openid (auth() with an
	// explicit scope), then connects. On the 403 it re-authorizes with the
	// challenged scope, but while it holds a refresh token it does so with a
	// refresh_token grant, which carries no scope: the new token still
	// lacks notes:read, the retry meets the same challenge and the SDK gives
	// up ("Server returned 403 after trying upscoping"). A client defect of
	// @modelcontextprotocol/sdk 1.32.2, asserted so that an upgrade that
	// fixes it shows up here.
	t.Run("ts-sdk/"+eraLegacy+"/narrowed-sign-in", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "ts-sdk/"+eraLegacy+"/narrowed-sign-in (insufficient scope)", e)
		res := r.runTS(tsOptions{Scope: "openid"})
		r.expectAnswer("initialize with a token lacking notes:read", 0, http.StatusForbidden, challenge(e))
		const known = "Server returned 403 after trying upscoping"
		if res.OK || !strings.Contains(res.Error, known) {
			r.failf(res.Step, "want the known step-up failure %q, got ok=%v: %s", known, res.OK, res.Error)
		}
		xs := numbered(res.Trace)
		mark := r.checkScopeAsked(xs, "openid", 0)
		if !slices.ContainsFunc(xs, func(x exchange) bool { return x.Seq > mark && x.Grant == "refresh_token" && x.Scope == "" }) {
			r.failf("step-up", "the step-up did not use a refresh_token grant without scope")
		}
	})

	// Without a refresh token the TypeScript SDK's step-up authorizes
	// again with the challenged scope and succeeds.
	t.Run("ts-sdk/"+eraLegacy+"/stored-token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		r := newRun(t, "ts-sdk/"+eraLegacy+"/stored-token (insufficient scope)", e)
		token := e.ds.Mint(map[string]any{"aud": []string{e.mcpURL}, "scope": "openid"})
		res := r.runTS(tsOptions{Token: token})
		r.okTS(res, 1)
		r.expectRefused("initialize with a token lacking notes:read", fingerprint("Bearer "+token), http.StatusForbidden, challenge(e))
		r.checkEra(eraLegacy)
		r.checkScopeAsked(numbered(res.Trace), "notes:read", 0)
	})
}

// checkScopeAsked checks that, among the client's exchanges xs, one after
// mark asked the authorization endpoint for exactly the scopes in scope (in
// any order), and returns its seq.
func (r *run) checkScopeAsked(xs []exchange, scope string, mark int64) int64 {
	r.t.Helper()
	want := strings.Fields(scope)
	slices.Sort(want)
	i := slices.IndexFunc(xs, func(x exchange) bool {
		got := strings.Fields(x.Scope)
		slices.Sort(got)
		return x.Seq > mark && x.Method == http.MethodGet &&
			strings.HasPrefix(x.URL, r.env.as.AuthorizationEndpoint+"?") && slices.Equal(got, want)
	})
	if i < 0 {
		var b strings.Builder
		writeExchanges(&b, xs)
		r.failf("PKCE authorization", "the client never asked for scope %q; it sent:%s", scope, b.String())
	}
	return xs[i].Seq
}

// numbered gives the Node driver's exchanges, which carry no seq, their
// order as seq.
func numbered(xs []exchange) []exchange {
	out := slices.Clone(xs)
	for i := range out {
		out[i].Seq = int64(i + 1)
	}
	return out
}
