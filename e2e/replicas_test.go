package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestReplicas runs three replicas of the example server, each its own
// process trusting one fake Descope and sharing MCP_SESSION_SECRET, behind
// nginx (round-robin, its own config on loopback ports):
//
//	TestReplicas/go-sdk/<era>            sign-in through nginx, whoami on every replica
//	TestReplicas/ts-sdk/2025-11-25       the same with the TypeScript SDK
//	TestReplicas/other-secret            a replica with another secret answers 404 to the fleet's sessions
//	TestReplicas/session-ended           a session ended on one replica is still served by the others
//	TestReplicas/replica-killed/<client> one replica killed mid-run, and the calls go on
//
// nginx's access log, which names the replica that answered each request,
// shows that the calls were spread over the replicas, and that a
// 2025-11-25 session opened on one replica was served by the others.
func TestReplicas(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)

	for _, era := range []string{eraModern, eraLegacy} {
		t.Run("go-sdk/"+era, func(t *testing.T) {
			mark := len(f.lb.accessLog(t))
			r, cs, ctx := f.goSDK(t, era)
			r.whoamiExample(ctx, cs, 6)
			r.checkStages(r.log.all(), era)
			r.checkEra(era)
			f.checkSpread(t, f.logged(t, mark, 6), cs.ID())
		})
	}

	t.Run("ts-sdk/"+eraLegacy, func(t *testing.T) {
		mark := len(f.lb.accessLog(t))
		e := f.env()
		r := newRun(t, "ts-sdk/"+eraLegacy+"/replicas", e)
		res := r.runTS(tsOptions{Tools: slices.Repeat([]string{"whoami"}, 6)})
		journalFromTrace(e.journal, res.Trace)
		r.okExampleTS(res, 6)
		r.checkStages(res.Trace, eraLegacy)
		r.checkEra(eraLegacy)
		f.checkSpread(t, f.logged(t, mark, 6), res.SessionID)
	})

	t.Run("other-secret", func(t *testing.T) {
		odd := startReplica(t, f.ds, f.publicURL(), "e2e replicas: a secret no other replica has")
		send := f.legacySender(t)

		// A session opened through nginx, on one of the fleet's replicas.
		a := send("initialize through nginx", rawCall{url: f.mcpURL, body: rawInitializeBody})
		session := a.header.Get("Mcp-Session-Id")
		if a.status != http.StatusOK || session == "" {
			t.Fatalf("initialize through nginx: %d, session %q: %s", a.status, session, a.body)
		}
		t.Logf("session %s opened on %s", sessionTail(session), f.name(a.header.Get("X-Upstream")))
		// Every replica of the fleet serves it.
		for _, r := range f.replicas {
			a := send("tools/call on "+f.name(r.addr), rawCall{url: "http://" + r.addr + "/mcp", session: session, body: rawWhoamiBody})
			if a.status != http.StatusOK || !strings.Contains(a.body, f.ds.User().Subject) {
				t.Errorf("%s answered the fleet's session with %d, want 200 and whoami: %s", f.name(r.addr), a.status, a.body)
			}
		}
		// The replica with another secret does not know it.
		oddURL := "http://" + odd.addr + "/mcp"
		a = send("tools/call on the odd replica", rawCall{url: oddURL, session: session, body: rawWhoamiBody})
		if a.status != http.StatusNotFound {
			t.Errorf("the replica with another secret answered the fleet's session with %d, want 404: %s", a.status, a.body)
		}
		// The token is good there; the session is what it refuses. And
		// the sessions it opens are unknown to the fleet.
		a = send("initialize on the odd replica", rawCall{url: oddURL, body: rawInitializeBody})
		own := a.header.Get("Mcp-Session-Id")
		if a.status != http.StatusOK || own == "" {
			t.Fatalf("the replica with another secret refused the token itself: %d: %s", a.status, a.body)
		}
		if a := send("its own session there", rawCall{url: oddURL, session: own, body: rawWhoamiBody}); a.status != http.StatusOK {
			t.Errorf("the replica with another secret refused its own session: %d: %s", a.status, a.body)
		}
		for _, r := range f.replicas {
			a := send("the odd session on "+f.name(r.addr), rawCall{url: "http://" + r.addr + "/mcp", session: own, body: rawWhoamiBody})
			if a.status != http.StatusNotFound {
				t.Errorf("%s answered a session of the replica with another secret with %d, want 404: %s", f.name(r.addr), a.status, a.body)
			}
		}
	})

	// Ending a session is remembered by the replica that ended it, and by
	// no other (README, Sessions): pinned here.
	t.Run("session-ended", func(t *testing.T) {
		send := f.legacySender(t)
		a := send("initialize through nginx", rawCall{url: f.mcpURL, body: rawInitializeBody})
		session := a.header.Get("Mcp-Session-Id")
		if a.status != http.StatusOK || session == "" {
			t.Fatalf("initialize through nginx: %d, session %q: %s", a.status, session, a.body)
		}
		ender := f.replicas[0]
		if a := send("DELETE on "+f.name(ender.addr), rawCall{method: http.MethodDelete, url: "http://" + ender.addr + "/mcp", session: session}); a.status != http.StatusOK {
			t.Fatalf("DELETE of the session on %s: %d: %s", f.name(ender.addr), a.status, a.body)
		}
		for _, r := range f.replicas {
			want := http.StatusOK
			if r == ender {
				want = http.StatusNotFound
			}
			if a := send("tools/call on "+f.name(r.addr), rawCall{url: "http://" + r.addr + "/mcp", session: session, body: rawWhoamiBody}); a.status != want {
				t.Errorf("after the session ended on %s, %s answered it with %d, want %d: %s", f.name(ender.addr), f.name(r.addr), a.status, want, a.body)
			}
		}
	})

	// The last two each kill a replica: the fleet ends with one.
	t.Run("replica-killed/go-sdk", func(t *testing.T) {
		mark := len(f.lb.accessLog(t))
		modern, csModern, ctx := f.goSDK(t, eraModern)
		legacy, csLegacy, _ := f.goSDK(t, eraLegacy)
		modern.whoamiExample(ctx, csModern, 3)
		legacy.whoamiExample(ctx, csLegacy, 3)
		// The replica that opened the 2025-11-25 session goes down.
		victim := f.home(t, f.logged(t, mark, 6), csLegacy.ID())
		victim.kill()
		killed := len(f.lb.accessLog(t))
		for range 3 {
			modern.whoamiExample(ctx, csModern, 2)
			legacy.whoamiExample(ctx, csLegacy, 2)
		}
		f.checkSurvived(t, f.logged(t, killed, 12), victim, 12)
	})

	t.Run("replica-killed/ts-sdk", func(t *testing.T) {
		mark := len(f.lb.accessLog(t))
		e := f.env()
		r := newRun(t, "ts-sdk/"+eraLegacy+"/replica-killed", e)
		// Once the session's first call is through, the replica that
		// opened it goes down while the driver waits; then it calls again.
		// (A request in flight on a replica that dies gets 502: nginx does
		// not send a POST twice.)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		type kill struct {
			victim *replica
			mark   int
		}
		killed := make(chan kill, 1)
		go func() {
			defer close(killed)
			var victim *replica
			pollUntil(ctx, func() bool {
				entries, err := f.lb.readAccessLog()
				if err != nil || len(entries) < mark {
					return false
				}
				victim = f.homeOfFirstCall(entries[mark:])
				return victim != nil
			})
			if victim != nil {
				victim.kill()
				entries, _ := f.lb.readAccessLog()
				killed <- kill{victim, len(entries)}
			}
		}()
		res := r.runTS(tsOptions{Tools: []string{"whoami"}, WaitMs: 1500})
		journalFromTrace(e.journal, res.Trace)
		cancel() // a kill still waiting for a call will see none now
		k, ok := <-killed
		if !ok {
			t.Fatal("no replica was killed: the TypeScript client's session made no call through nginx")
		}
		r.okExampleTS(res, 2)
		r.checkEra(eraLegacy)
		f.checkSurvived(t, f.logged(t, k.mark, 1), k.victim, 1)
	})
}

// goSDK signs the Go SDK client in through nginx with the runner the other
// tests use, and returns the connected session.
func (f *fleet) goSDK(t *testing.T, era string) (*run, *sdk.ClientSession, context.Context) {
	t.Helper()
	e := f.env()
	r := newRun(t, "go-sdk/"+era+"/replicas", e)
	// Nothing of the test's sits between nginx and the replicas: the era
	// checks read the client's record of what nginx answered.
	e.journal = r.log
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	t.Cleanup(cancel)
	return r, r.connectGoSDK(ctx, goSDKOptions{era: era}), ctx
}

// legacySender returns a function that sends requests by hand in protocol
// 2025-11-25 with a token of the fake Descope's user, and fails the test
// when one gets no answer.
func (f *fleet) legacySender(t *testing.T) func(what string, c rawCall) rawAnswer {
	token := f.ds.Mint(map[string]any{"scope": fleetScopeRead + " " + fleetScopeWrite})
	hc := &http.Client{Timeout: stepTimeout}
	return func(what string, c rawCall) rawAnswer {
		t.Helper()
		c.token, c.protocol = token, eraLegacy
		a, err := c.send(t.Context(), hc)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return a
	}
}

// whoamiExample calls the example's whoami n times and checks that each
// names the fake Descope's user.
func (r *run) whoamiExample(ctx context.Context, cs *sdk.ClientSession, n int) {
	r.t.Helper()
	for range n {
		r.step("tools/call whoami", func() error {
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "whoami"})
			if err != nil {
				return err
			}
			return r.checkExampleSub(res.IsError, goSDKText(res))
		})
	}
}

// checkExampleSub checks an answer of the example's whoami, which describes
// the caller in JSON.
func (r *run) checkExampleSub(isError bool, text string) error {
	var id struct {
		Sub string `json:"sub"`
	}
	switch err := json.Unmarshal([]byte(text), &id); {
	case isError:
		return fmt.Errorf("whoami returned a tool error: %s", text)
	case err != nil:
		return fmt.Errorf("whoami returned %q: %v", text, err)
	case id.Sub != r.env.subject():
		return fmt.Errorf("whoami returned sub %q, want %q", id.Sub, r.env.subject())
	}
	return nil
}

// okExampleTS checks that the TypeScript driver got through and that its
// calls of the example's whoami named the user.
func (r *run) okExampleTS(res tsResult, calls int) {
	r.t.Helper()
	r.okTSWith(res, calls, r.checkExampleSub)
}

// logged returns nginx's access log from line mark on, once it holds
// calls tool calls or a few seconds have passed: nginx writes a request's
// line just after the answer's last byte, so a client can have its answer
// before the line is there.
func (f *fleet) logged(t *testing.T, mark, calls int) []proxied {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var entries []proxied
	pollUntil(ctx, func() bool {
		all, err := f.lb.readAccessLog()
		if err != nil || len(all) < mark {
			return false
		}
		entries = all[mark:]
		return len(toolCalls(entries, "")) >= calls
	})
	return entries
}

// checkSpread checks, from nginx's access log of one client's run, that
// its tool calls went through and were answered by every replica; and, for
// a 2025-11-25 session, that the session opened on one replica was served
// by all of them.
func (f *fleet) checkSpread(t *testing.T, entries []proxied, session string) {
	t.Helper()
	calls := toolCalls(entries, session)
	servers := map[string]int{}
	for _, p := range calls {
		if p.Status != http.StatusOK {
			t.Errorf("a tool call answered %d: %s", p.Status, p)
		}
		servers[p.servedBy()]++
	}
	if session != "" {
		home := f.home(t, entries, session)
		t.Logf("session %s opened on %s", sessionTail(session), f.name(home.addr))
	}
	var spread []string
	for _, addr := range slices.Sorted(maps.Keys(servers)) {
		spread = append(spread, fmt.Sprintf("%s: %d", f.name(addr), servers[addr]))
	}
	t.Logf("tool calls answered by %s", strings.Join(spread, ", "))
	for _, r := range f.replicas {
		if servers[r.addr] == 0 {
			t.Errorf("%s answered none of the %d tool calls; nginx logged:\n%s", f.name(r.addr), len(calls), accessLines(entries))
		}
	}
}

// checkSurvived checks that, after victim went down, at least want tool
// calls went through, none of them answered by victim, and says whether
// nginx tried victim first and moved on.
func (f *fleet) checkSurvived(t *testing.T, entries []proxied, victim *replica, want int) {
	t.Helper()
	calls := toolCalls(entries, "")
	if len(calls) < want {
		t.Errorf("%d tool calls after %s went down, want at least %d; nginx logged:\n%s", len(calls), f.name(victim.addr), want, accessLines(entries))
	}
	for _, p := range calls {
		if p.Status != http.StatusOK || p.servedBy() == victim.addr {
			t.Errorf("after %s went down, a tool call: %s", f.name(victim.addr), p)
		}
	}
	retried := 0
	for _, p := range entries {
		if len(p.tried()) > 1 && p.tried()[0] == victim.addr {
			retried++
			t.Logf("nginx moved on from the killed replica: %s", p)
		}
	}
	t.Logf("%s killed; %d tool calls after it went through, %d request(s) passed on by nginx", f.name(victim.addr), len(calls), retried)
}

// toolCalls are the tools/call requests among entries; with a session, only
// those of that session.
func toolCalls(entries []proxied, session string) []proxied {
	var out []proxied
	for _, p := range entries {
		if p.rpc() == "tools/call" && (session == "" || p.Session == session) {
			out = append(out, p)
		}
	}
	return out
}

// home is the replica whose answer opened session.
func (f *fleet) home(t *testing.T, entries []proxied, session string) *replica {
	t.Helper()
	for _, p := range entries {
		if p.NewSession == session && p.Status == http.StatusOK {
			if r := f.replica(p.servedBy()); r != nil {
				return r
			}
		}
	}
	t.Fatalf("nginx logged no answer that opened session %s:\n%s", sessionTail(session), accessLines(entries))
	return nil
}

// homeOfFirstCall is the replica that opened the first session seen making
// a tool call, or nil while there is none.
func (f *fleet) homeOfFirstCall(entries []proxied) *replica {
	for _, call := range toolCalls(entries, "") {
		if call.Session == "" || call.Status != http.StatusOK {
			continue
		}
		for _, p := range entries {
			if p.NewSession == call.Session {
				return f.replica(p.servedBy())
			}
		}
	}
	return nil
}

func (f *fleet) replica(addr string) *replica {
	for _, r := range f.replicas {
		if r.addr == addr {
			return r
		}
	}
	return nil
}

// publicURL is nginx's, every replica's MCP_SERVER_URL.
func (f *fleet) publicURL() string { return strings.TrimSuffix(f.mcpURL, "/mcp") }

func accessLines(entries []proxied) string {
	var b strings.Builder
	for _, p := range entries {
		b.WriteString("    ")
		b.WriteString(p.String())
		b.WriteString("\n")
	}
	return b.String()
}
