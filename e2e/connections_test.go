package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// connectLink is a connect link of the example's fake Descope.
var connectLink = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/outbound/connect/[A-Za-z0-9]+$`)

// TestConnectionsAgainstTheExample: the Go SDK's client signs in to the
// example (its own process, dev mode) through the whole OAuth flow, asking
// for the scopes the metadata lists, outbound.token.fetch among them, and
// calls github_profile, whose GitHub token comes from the fake Descope's
// vault. The dev user has not connected GitHub:
//   - a client that declares URL-mode elicitation is asked to open the
//     connect link; the test, as the user's browser, follows it and
//     accepts, and the same call returns the GitHub account (2026-07-28:
//     an input request and the client's retry; 2025-11-25: mcp-go's
//     elicitation/create on the call's stream);
//   - a client that does not gets the link as the tool's answer; the test
//     follows it, and the retried call returns the account.
//
// Both protocol eras, a fresh server each, so that every run starts
// unconnected.
func TestConnectionsAgainstTheExample(t *testing.T) {
	const profile = `{"login":"dev-user","name":"Dev User"}`
	for _, era := range []string{eraModern, eraLegacy} {
		for _, elicit := range []bool{true, false} {
			name := era + "/link-in-the-result"
			if elicit {
				name = era + "/url-elicitation"
			}
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
				defer cancel()
				endpoint := startExample(t) + "/mcp"
				var asked atomic.Int32
				opts := &sdk.ClientOptions{}
				if elicit {
					opts.Capabilities = &sdk.ClientCapabilities{Elicitation: &sdk.ElicitationCapabilities{URL: &sdk.URLElicitationCapabilities{}}}
					opts.ElicitationHandler = func(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
						asked.Add(1)
						if req.Params.Mode != "url" || !connectLink.MatchString(req.Params.URL) || req.Params.ElicitationID == "" {
							return nil, fmt.Errorf("elicitation %+v is not a URL-mode connect link", req.Params)
						}
						if err := openLink(ctx, req.Params.URL); err != nil {
							return nil, err
						}
						return &sdk.ElicitResult{Action: "accept"}, nil
					}
				}
				cs := signInGoSDK(ctx, t, endpoint, era, opts)

				text, isErr := callGoSDK(ctx, t, cs, "github_profile")
				if elicit {
					if isErr || text != profile || asked.Load() != 1 {
						t.Fatalf("github_profile = %q (error %t) after %d elicitations, want %s after 1", text, isErr, asked.Load(), profile)
					}
				} else {
					m := regexp.MustCompile(`^This tool needs your github account\. Connect it at (\S+), then call this tool again\.$`).FindStringSubmatch(text)
					if !isErr || m == nil || !connectLink.MatchString(m[1]) {
						t.Fatalf("github_profile before connecting = %q (error %t), want a tool error with the connect link", text, isErr)
					}
					if err := openLink(ctx, m[1]); err != nil {
						t.Fatal(err)
					}
				}
				text, isErr = callGoSDK(ctx, t, cs, "github_profile")
				if isErr || text != profile {
					t.Fatalf("github_profile once connected = %q (error %t), want %s", text, isErr, profile)
				}
				if asked.Load() > 1 {
					t.Fatalf("asked to connect %d times", asked.Load())
				}
			})
		}
	}
}

// openLink follows a connect link as the user's browser would.
func openLink(ctx context.Context, link string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("following the connect link: %w", err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || string(page) != "connected github\n" {
		return fmt.Errorf("the connect link answered %d: %q", resp.StatusCode, page)
	}
	return nil
}

// signInGoSDK connects a Go SDK client with opts to endpoint in era, signing
// in through the authorization-code flow with dynamic registration (the fake
// Descope approves at once).
func signInGoSDK(ctx context.Context, t *testing.T, endpoint, era string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: goSDKRegistration("e2e-go-sdk-connections"),
		RedirectURL:                     redirectURI,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, err := approveRedirect(ctx, args.URL)
			if err != nil {
				return nil, err
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "e2e-go-sdk-connections", Version: "1.0.0"}, opts)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: h},
		&sdk.ClientSessionOptions{ProtocolVersion: era})
	if err != nil {
		t.Fatalf("%s with sign-in: %v", connectStep(era), err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	if v := cs.InitializeResult().ProtocolVersion; v != era {
		t.Fatalf("negotiated %q, want %q", v, era)
	}
	return cs
}

// callGoSDK calls tool without arguments and returns its text and whether
// it is a tool error.
func callGoSDK(ctx context.Context, t *testing.T, cs *sdk.ClientSession, tool string) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool})
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	if len(res.Content) != 1 {
		b, _ := json.Marshal(res)
		t.Fatalf("tools/call %s: %s, want one content item", tool, b)
	}
	return goSDKText(res), res.IsError
}
