package e2e

import (
	"cmp"
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// goSDKOptions says how a Go SDK client run starts.
type goSDKOptions struct {
	era          string
	wantEra      string                  // the era the call must run in (default era)
	initialToken string                  // access token the client holds at the start
	scopeFilter  func([]string) []string // AuthorizationCodeHandlerConfig.ScopeFilter
}

// goSDKRegistration is how the Go SDK's clients register dynamically: a
// public client (PKCE, no secret) with the code and refresh grants.
func goSDKRegistration(clientName string) *auth.DynamicClientRegistrationConfig {
	return &auth.DynamicClientRegistrationConfig{
		Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              clientName,
			RedirectURIs:            []string{redirectURI},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: "none",
		},
	}
}

// connectGoSDK makes a Go SDK client with its authorization-code handler and
// connects. The handler does the whole sign-in inside Connect, when the
// server refuses a request: discovery, registration, authorization (through
// the AuthorizationCodeFetcher, which GETs the URL without a browser), token
// exchange; then the request is sent again.
func (r *run) connectGoSDK(ctx context.Context, o goSDKOptions) *sdk.ClientSession {
	r.t.Helper()
	if o.wantEra == "" {
		o.wantEra = o.era
	}
	hc := recordingClient(r.log)
	var h *auth.AuthorizationCodeHandler
	r.step("new authorization-code handler", func() error {
		cfg := &auth.AuthorizationCodeHandlerConfig{
			DynamicClientRegistrationConfig: goSDKRegistration("e2e-go-sdk"),
			RedirectURL:                     redirectURI,
			AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
				code, state, iss, err := r.authorizeWithoutBrowser(ctx, args.URL)
				if err != nil {
					return nil, fmt.Errorf("PKCE authorization (no-redirect GET): %w", err)
				}
				return &auth.AuthorizationResult{Code: code, State: state, Iss: iss}, nil
			},
			ScopeFilter: o.scopeFilter,
			Client:      hc,
		}
		if o.initialToken != "" {
			cfg.InitialTokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.initialToken, TokenType: "Bearer"})
		}
		var err error
		h, err = auth.NewAuthorizationCodeHandler(cfg)
		return err
	})
	c := sdk.NewClient(&sdk.Implementation{Name: "e2e-go-sdk", Version: "1.0.0"}, nil)
	var cs *sdk.ClientSession
	r.step("connect: discovery, registration, PKCE authorization, token exchange, "+connectStep(o.wantEra), func() error {
		var err error
		cs, err = c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: r.env.mcpURL, HTTPClient: hc, OAuthHandler: h},
			&sdk.ClientSessionOptions{ProtocolVersion: o.era})
		if err != nil {
			return err
		}
		if v := cs.InitializeResult().ProtocolVersion; v != o.wantEra {
			return fmt.Errorf("negotiated protocol version %q, want %q", v, o.wantEra)
		}
		return nil
	})
	r.t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// whoamiGoSDK calls whoami and checks the sub it returns.
func (r *run) whoamiGoSDK(ctx context.Context, cs *sdk.ClientSession) {
	r.t.Helper()
	r.step("tools/call whoami", func() error {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "whoami"})
		if err != nil {
			return err
		}
		return r.checkSub(res.IsError, goSDKText(res))
	})
}

// goSDKText is the text of a Go SDK tool result's first content item (a
// Go rendering when it is not text), or "" when it has none.
func goSDKText(res *sdk.CallToolResult) string {
	if len(res.Content) == 0 {
		return ""
	}
	if tc, ok := res.Content[0].(*sdk.TextContent); ok {
		return tc.Text
	}
	return fmt.Sprintf("%#v", res.Content[0])
}

// runGoSDK is the whole run: connection with sign-in, whoami.
func (r *run) runGoSDK(o goSDKOptions) *sdk.ClientSession {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	r.t.Cleanup(cancel)
	cs := r.connectGoSDK(ctx, o)
	r.whoamiGoSDK(ctx, cs)
	era := cmp.Or(o.wantEra, o.era)
	r.checkStages(r.log.all(), era)
	r.checkEra(era)
	return cs
}
