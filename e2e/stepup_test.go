package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
)

// Scopes of the step-up tests: the endpoint requires notes:read, the
// write_note tool declares notes:write.
const (
	scopeRead    = "notes:read"
	scopeWrite   = "notes:write"
	scopeStepUp  = scopeRead + " " + scopeWrite // what the 403 names
	toolWhoami   = "whoami"
	toolWrite    = "write_note"
	wroteNoteFor = "note written for "
)

// notes is the MCP server of the step-up tests, built with an auth.Policy:
// whoami needs nothing beyond the endpoint's scope, write_note declares
// notes:write.
type notes struct {
	pol    *auth.Policy
	srv    *server.MCPServer
	writes atomic.Int64 // how many times write_note ran
}

func newNotes() *notes {
	n := &notes{pol: auth.NewPolicy()}
	n.srv = server.NewMCPServer("e2e-notes", "1.0.0", n.pol.ServerOptions()...)
	n.pol.AddTool(n.srv, whoamiTool(), whoami)
	n.pol.AddTool(n.srv, mcp.NewTool(toolWrite, mcp.WithDescription("Writes a note.")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.writes.Add(1)
			c, ok := descope.ClaimsFromContext(ctx)
			if !ok {
				return mcp.NewToolResultError("no authenticated caller"), nil
			}
			return mcp.NewToolResultText(wroteNoteFor + c.Subject), nil
		},
		auth.RequireScopes(scopeWrite))
	return n
}

// env starts a fake Descope and the notes server, served by
// auth.Handler(p, server.NewStreamableHTTPServer(s, auth.SessionBinding(nil)), auth.WithPolicy(pol)).
func (n *notes) env(t *testing.T) *env {
	t.Helper()
	return newEnv(t, setup{
		layout:         rootLayout,
		requiredScopes: []string{scopeRead},
		mcpServer:      n.srv,
		handlerOptions: []auth.Option{auth.WithPolicy(n.pol)},
	})
}

// challengeStepUp is the exact challenge to a tools/call of write_note with
// a token that holds notes:read only.
func (e *env) challengeStepUp() string {
	return `Bearer error="insufficient_scope", error_description="The access token does not grant the scope this request requires.", scope="` +
		scopeStepUp + `", resource_metadata="` + e.prmURL + `"`
}

// isCall reports whether x is a tools/call of tool to the MCP endpoint.
func (x exchange) isCall(e *env, tool string) bool {
	return x.Method == http.MethodPost && x.URL == e.mcpURL && x.RPC == "tools/call" && x.Name == tool
}

// writeRefused checks, in the server's journal, that the first tools/call of
// write_note was answered 403 with exactly the step-up challenge, before the
// tool ran, and returns that exchange.
func (r *run) writeRefused(step string) exchange {
	r.t.Helper()
	e := r.env
	x, ok := e.journal.find(0, func(x exchange) bool { return x.isCall(e, toolWrite) })
	switch {
	case !ok:
		r.failf(step, "the MCP server received no tools/call of %s", toolWrite)
	case x.Status != http.StatusForbidden || x.Challenge != e.challengeStepUp():
		r.failf(step, "the MCP server answered the first tools/call of %s with %d and WWW-Authenticate: %q; want 403 and %q",
			toolWrite, x.Status, x.Challenge, e.challengeStepUp())
	}
	return x
}

// checkStepUp checks a successful step-up, from the client's exchanges xs
// (numbered in order) and the server's journal: the client first asked the
// authorization endpoint for notes:read only; the server refused write_note
// with the exact 403 challenge; the client then asked the authorization
// endpoint for the challenged scope (with notes:write), exchanged the code,
// and the call was sent again with the new token, answered 200; the tool
// ran exactly once.
func (r *run) checkStepUp(n *notes, xs []exchange) {
	r.t.Helper()
	e := r.env
	signIn := r.checkScopeAsked(xs, scopeRead, 0)
	refused := r.writeRefused("tools/call " + toolWrite + " with a notes:read token")
	r.t.Logf("client %s: the MCP server answered tools/call %s with 403 and WWW-Authenticate: %s", r.client, toolWrite, refused.Challenge)

	stepUp := r.checkScopeAsked(xs, scopeStepUp, signIn)
	if i := slices.IndexFunc(xs, func(x exchange) bool {
		return x.Seq > stepUp && x.Method == http.MethodPost && x.URL == e.as.TokenEndpoint &&
			x.Grant == "authorization_code" && x.Status == http.StatusOK
	}); i < 0 {
		r.failf("token exchange after step-up", "no authorization_code grant answered 200 after the step-up authorization")
	}

	ok, found := e.journal.find(refused.Seq, func(x exchange) bool { return x.isCall(e, toolWrite) })
	switch {
	case !found:
		r.failf("tools/call "+toolWrite+" after step-up", "the client did not send the call again")
	case ok.Status != http.StatusOK:
		r.failf("tools/call "+toolWrite+" after step-up", "the MCP server answered %d (WWW-Authenticate: %s)", ok.Status, ok.Challenge)
	case ok.Token == refused.Token:
		r.failf("tools/call "+toolWrite+" after step-up", "the call was sent again with the refused token %s", ok.Token)
	}
	if got := n.writes.Load(); got != 1 {
		r.failf("tools/call "+toolWrite+" after step-up", "%s ran %d times, want exactly once", toolWrite, got)
	}
}

// checkWrote checks write_note's result.
func (r *run) checkWrote(isError bool, text string) error {
	if want := wroteNoteFor + r.env.subject(); isError || text != want {
		return fmt.Errorf("%s returned %q (isError=%v), want %q", toolWrite, text, isError, want)
	}
	return nil
}

// TestStepUp: a tool declares a scope (auth.RequireScopes("notes:write")
// through an auth.Policy) beyond the endpoint's (notes:read). Each client
// signs in asking for notes:read only, calls whoami, then calls write_note:
// the server refuses it with 403 insufficient_scope naming both scopes,
// before the tool runs. A client that supports step-up authorizes again
// with that scope and the call then succeeds; the tool runs once.
//
//	TestStepUp/<client>/<era>[/<variant>]
func TestStepUp(t *testing.T) {
	t.Parallel()

	// The Go SDK's authorization-code handler steps up on a 403
	// insufficient_scope to any request, asking for the union of the
	// scopes it was granted and those challenged, and sends the request
	// again. (v1.8.0 also registers a new client, by dynamic registration,
	// at each authorization; the test does not depend on it.) The first
	// sign-in is narrowed to notes:read by the ScopeFilter.
	for _, era := range []string{eraModern, eraLegacy} {
		t.Run("go-sdk/"+era, func(t *testing.T) {
			t.Parallel()
			n := newNotes()
			e := n.env(t)
			r := newRun(t, "go-sdk/"+era+" (step-up)", e)
			ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
			defer cancel()
			var signedIn atomic.Bool
			cs := r.connectGoSDK(ctx, goSDKOptions{era: era, scopeFilter: func(discovered []string) []string {
				if signedIn.CompareAndSwap(false, true) {
					return []string{scopeRead} // the first sign-in: notes:read only
				}
				return discovered
			}})
			r.whoamiGoSDK(ctx, cs)
			r.step("tools/call "+toolWrite+" (403, step-up, retry)", func() error {
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolWrite})
				if err != nil {
					return err
				}
				return r.checkWrote(res.IsError, goSDKText(res))
			})
			r.checkStages(r.log.all(), era)
			r.checkEra(era) // the call after the step-up ran in the era, in the same session for 2025-11-25
			r.checkStepUp(n, r.log.all())
		})
	}

	// The TypeScript SDK, on a 403 insufficient_scope, calls auth() with
	// the challenged scope. Holding no refresh token, it sends the user to
	// the authorization endpoint with that scope and throws
	// UnauthorizedError; the application (the driver) exchanges the code
	// with finishAuth and calls the tool again.
	t.Run("ts-sdk/"+eraLegacy+"/no-refresh-token", func(t *testing.T) {
		t.Parallel()
		n := newNotes()
		e := n.env(t)
		r := newRun(t, "ts-sdk/"+eraLegacy+"/no-refresh-token (step-up)", e)
		res := r.runTS(tsOptions{Scope: scopeRead, Tools: []string{toolWhoami, toolWrite}, NoRefreshToken: true})
		r.okTS(res, 1)
		if i := slices.IndexFunc(res.Tokens, func(tk tsToken) bool { return tk.RefreshToken }); i >= 0 {
			r.failf("token exchange", "the client was given a refresh token (token response %d), the test needs a client without one", i+1)
		}
		if res.StepUps != 1 {
			r.failf("tools/call "+toolWrite, "the driver completed %d step-up(s), want 1", res.StepUps)
		}
		if i := slices.IndexFunc(res.Calls, func(c tsCall) bool { return c.Name == toolWrite }); i < 0 {
			r.failf("tools/call "+toolWrite, "the driver reports no result for %s", toolWrite)
		} else if err := r.checkWrote(res.Calls[i].IsError, res.Calls[i].Text); err != nil {
			r.failf("tools/call "+toolWrite, "%v", err)
		}
		r.checkStages(res.Trace, eraLegacy)
		r.checkEra(eraLegacy)
		r.checkStepUp(n, numbered(res.Trace))
	})

	// Holding a refresh token, the TypeScript SDK (1.32.2) answers the 403
	// insufficient_scope with a refresh_token grant instead of a new
	// authorization request. A refresh cannot widen a grant: RFC 6749 §6
	// says the scope of a refresh request "MUST NOT include any scope not
	// originally granted by the resource owner", and the SDK sends none,
	// so the new token again holds notes:read only. The retry meets the
	// same challenge and the SDK gives up with "Server returned 403 after
	// trying upscoping". This is a limitation of the client, not of the
	// server: the assertions pin the current behaviour so that an SDK
	// upgrade that fixes it (a new authorization request with the
	// challenged scope) makes this test fail and can be turned into a
	// success case.
	t.Run("ts-sdk/"+eraLegacy+"/with-refresh-token", func(t *testing.T) {
		t.Parallel()
		n := newNotes()
		e := n.env(t)
		r := newRun(t, "ts-sdk/"+eraLegacy+"/with-refresh-token (step-up)", e)
		res := r.runTS(tsOptions{Scope: scopeRead, Tools: []string{toolWhoami, toolWrite}})
		const known = "Server returned 403 after trying upscoping"
		if res.OK || res.Step != "tools/call "+toolWrite || !strings.Contains(res.Error, known) {
			r.failf(res.Step, "want the known step-up failure %q at step %q, got ok=%v: %s", known, "tools/call "+toolWrite, res.OK, res.Error)
		}
		if len(res.Subs) != 1 || r.checkSub(false, res.Subs[0]) != nil {
			r.failf("tools/call "+toolWhoami, "whoami answered %q before the step-up, want one call returning %q", res.Subs, e.subject())
		}
		if len(res.Tokens) == 0 || !res.Tokens[0].RefreshToken {
			r.failf("token exchange", "the first sign-in gave the client no refresh token (%+v)", res.Tokens)
		}
		refused := r.writeRefused("tools/call " + toolWrite + " with a notes:read token")
		r.t.Logf("client %s: the MCP server answered tools/call %s with 403 and WWW-Authenticate: %s", r.client, toolWrite, refused.Challenge)

		xs := numbered(res.Trace)
		signIn := r.checkScopeAsked(xs, scopeRead, 0)
		// After the 403: a refresh_token grant without scope, and no
		// new authorization request.
		i := slices.IndexFunc(xs, func(x exchange) bool { return x.isCall(e, toolWrite) && x.Status == http.StatusForbidden })
		if i < 0 {
			r.failf("tools/call "+toolWrite, "the client's exchanges show no 403 to %s", toolWrite)
		}
		after := xs[i+1:]
		j := slices.IndexFunc(after, func(x exchange) bool {
			return x.Method == http.MethodPost && x.URL == e.as.TokenEndpoint && x.Grant == "refresh_token"
		})
		switch {
		case j < 0:
			r.failf("step-up", "the client sent no refresh_token grant after the 403")
		case after[j].Scope != "" || after[j].Status != http.StatusOK:
			r.failf("step-up", "the refresh_token grant asked for scope %q and was answered %d; want no scope, 200", after[j].Scope, after[j].Status)
		}
		if slices.ContainsFunc(xs, func(x exchange) bool {
			return x.Seq > signIn && x.Method == http.MethodGet && strings.HasPrefix(x.URL, e.as.AuthorizationEndpoint+"?")
		}) {
			r.failf("step-up", "the client authorized again: the known limitation may be fixed, turn this test into a success case")
		}
		// The retry, with the refreshed (still notes:read) token, met the
		// same challenge on the server, and the tool never ran.
		retry, found := e.journal.find(refused.Seq, func(x exchange) bool { return x.isCall(e, toolWrite) })
		switch {
		case !found:
			r.failf("tools/call "+toolWrite+" after refresh", "the client did not send the call again")
		case retry.Token == refused.Token || retry.Status != http.StatusForbidden || retry.Challenge != refused.Challenge:
			r.failf("tools/call "+toolWrite+" after refresh", "the retry (token %s, refused one %s) was answered %d with WWW-Authenticate: %q; want a new token refused with the same challenge",
				retry.Token, refused.Token, retry.Status, retry.Challenge)
		}
		if got := n.writes.Load(); got != 0 {
			r.failf("tools/call "+toolWrite, "%s ran %d times, want never", toolWrite, got)
		}
	})

	// mcp-go v1.2.1 has no step-up authorization: it does not authorize
	// again. Nor does the 403 reach the caller as an HTTP error: its
	// streamable-HTTP transport handles 401 only; for any other status it
	// reads the body as a JSON-RPC response, taking a bare string "error"
	// member as an internal error (a leniency for some servers). The
	// library's body {"error":"insufficient_scope","error_description":...}
	// thus becomes the JSON-RPC error "internal error: insufficient_scope";
	// the status, the challenged scope and resource_metadata are lost to
	// the caller. The exact error is asserted so that a change shows up.
	t.Run("mcp-go/"+eraModern+"/no-step-up", func(t *testing.T) {
		t.Parallel()
		n := newNotes()
		e := n.env(t)
		r := newRun(t, "mcp-go/"+eraModern+"/no-step-up", e)
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		o := mcpGoOptions{era: eraModern, scopes: []string{scopeRead}}
		c := r.newMCPGo(ctx, o)
		r.signInMCPGo(ctx, c, o)
		r.connectMCPGo(ctx, c, o.era)
		r.whoamiMCPGo(ctx, c)
		mark := seq.Load()
		var callErr error
		r.step("tools/call "+toolWrite+" with a notes:read token", func() error {
			req := mcp.CallToolRequest{}
			req.Params.Name = toolWrite
			res, err := c.CallTool(ctx, req)
			callErr = err
			const known = "internal error: insufficient_scope"
			switch {
			case err == nil:
				return fmt.Errorf("succeeded (isError=%v, %q) with a token lacking notes:write", res.IsError, toolText(res.Content))
			case !errors.Is(err, mcp.ErrInternalError) || err.Error() != known:
				return fmt.Errorf("want the 403 surfaced as the JSON-RPC error %q, got: %w", known, err)
			}
			return nil
		})
		t.Logf("mcp-go CallTool returned: %v", callErr)
		refused := r.writeRefused("tools/call " + toolWrite + " with a notes:read token")
		t.Logf("client %s: the MCP server answered tools/call %s with 403 and WWW-Authenticate: %s", r.client, toolWrite, refused.Challenge)
		if slices.ContainsFunc(r.log.since(mark), func(x exchange) bool {
			return strings.HasPrefix(x.URL, e.ds.URL())
		}) {
			r.failf("tools/call "+toolWrite, "the client talked to the authorization server after the 403: mcp-go may do step-up now")
		}
		if got := n.writes.Load(); got != 0 {
			r.failf("tools/call "+toolWrite, "%s ran %d times, want never", toolWrite, got)
		}
	})
}
