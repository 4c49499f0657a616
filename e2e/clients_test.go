package e2e

import (
	"testing"
)

// TestClients signs each client in through the whole OAuth flow and calls
// whoami, in each era it speaks, on each layout:
//
//	TestClients/<client>/<era>/layout=<layout>[/start=<how>]
//
// Each run checks, from the client's own exchanges, that it discovered the
// protected-resource metadata, then the authorization-server metadata,
// registered, authorized with PKCE (naming the resource), exchanged the code,
// connected and called the tool; and, from the server's side, that the call
// ran in the era the name says.
func TestClients(t *testing.T) {
	t.Parallel()

	t.Run("mcp-go", func(t *testing.T) {
		t.Parallel()
		for _, era := range []string{eraModern, eraLegacy} {
			t.Run(era, func(t *testing.T) {
				t.Parallel()
				for _, l := range layouts {
					t.Run(l.String(), func(t *testing.T) {
						t.Parallel()
						// No token: Initialize fails before sending anything.
						t.Run("start=no-token", func(t *testing.T) {
							t.Parallel()
							e := newEnv(t, setup{layout: l})
							newRun(t, "mcp-go/"+era+"/"+l.String()+"/start=no-token", e).runMCPGo(mcpGoOptions{era: era})
						})
						// A stored token the server refuses: the client follows
						// resource_metadata from the 401.
						t.Run("start=stored-token", func(t *testing.T) {
							t.Parallel()
							e := newEnv(t, setup{layout: l})
							newRun(t, "mcp-go/"+era+"/"+l.String()+"/start=stored-token", e).runMCPGo(mcpGoOptions{
								era:         era,
								storedToken: "not-a-token-this-server-issued",
								challenge:   e.challengeInvalidToken(),
							})
						})
					})
				}
			})
		}
	})

	t.Run("go-sdk", func(t *testing.T) {
		t.Parallel()
		for _, era := range []string{eraModern, eraLegacy} {
			t.Run(era, func(t *testing.T) {
				t.Parallel()
				for _, l := range layouts {
					t.Run(l.String(), func(t *testing.T) {
						t.Parallel()
						e := newEnv(t, setup{layout: l})
						r := newRun(t, "go-sdk/"+era+"/"+l.String(), e)
						r.runGoSDK(goSDKOptions{era: era})
						// The first request went out without a token and was
						// challenged; the client took the metadata URL from there.
						r.expectAnswer(connectStep(era)+" without a token", 0, 401, e.challengeNoToken())
					})
				}
			})
		}
	})

	t.Run("ts-sdk", func(t *testing.T) {
		t.Parallel()
		t.Run(eraLegacy, func(t *testing.T) {
			t.Parallel()
			for _, l := range layouts {
				t.Run(l.String(), func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, setup{layout: l})
					r := newRun(t, "ts-sdk/"+eraLegacy+"/"+l.String(), e)
					res := r.runTS(tsOptions{})
					r.okTS(res, 1)
					r.checkStages(res.Trace, eraLegacy)
					r.checkEra(eraLegacy)
					r.expectAnswer("initialize without a token", 0, 401, e.challengeNoToken())
				})
			}
		})
	})
}
