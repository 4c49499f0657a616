package e2e

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// mcpGoOptions says how an mcp-go client run starts.
type mcpGoOptions struct {
	era         string
	storedToken string   // access token in the client's TokenStore at the start
	scopes      []string // OAuthConfig.Scopes
	// challenge is the exact WWW-Authenticate the server must answer the
	// stored token with.
	challenge string
}

// connectStep names the request that opens a connection in era.
func connectStep(era string) string {
	if era == eraModern {
		return "server/discover"
	}
	return "initialize"
}

// newMCPGo makes an mcp-go OAuth client for the env's MCP endpoint.
func (r *run) newMCPGo(ctx context.Context, o mcpGoOptions) *client.Client {
	r.t.Helper()
	hc := recordingClient(r.log)
	store := client.NewMemoryTokenStore()
	if o.storedToken != "" {
		r.step("store a token", func() error {
			return store.SaveToken(ctx, &client.Token{AccessToken: o.storedToken, TokenType: "Bearer"})
		})
	}
	cfg := client.OAuthConfig{
		RedirectURI: redirectURI,
		Scopes:      o.scopes,
		TokenStore:  store,
		PKCEEnabled: true,
		HTTPClient:  hc,
	}
	var c *client.Client
	r.step("new client", func() error {
		var err error
		if o.era == eraModern {
			// mcp-go v1.2.1 tries the sessionless revision by default.
			c, err = client.NewOAuthStreamableHttpClient(r.env.mcpURL, cfg, transport.WithHTTPBasicClient(hc))
			return err
		}
		// What NewOAuthStreamableHttpClient does, with the version pinned.
		tr, err := transport.NewStreamableHTTP(r.env.mcpURL, transport.WithHTTPOAuth(cfg), transport.WithHTTPBasicClient(hc))
		if err != nil {
			return err
		}
		c = client.NewClient(tr, client.WithProtocolVersion(o.era))
		return nil
	})
	r.t.Cleanup(func() { _ = c.Close() })
	r.step("start", func() error { return c.Start(ctx) })
	return c
}

// signInMCPGo runs mcp-go's sign-in: a first connection attempt that ends in
// an OAuthAuthorizationRequiredError, then registration, the authorization
// URL, the authorization itself without a browser, and the token exchange.
func (r *run) signInMCPGo(ctx context.Context, c *client.Client, o mcpGoOptions) {
	r.t.Helper()
	mark := seq.Load()
	var handler *transport.OAuthHandler
	r.step(connectStep(o.era)+" before sign-in", func() error {
		_, err := c.Initialize(ctx, initializeRequest())
		if err == nil {
			return errors.New("succeeded without signing in")
		}
		if !client.IsOAuthAuthorizationRequiredError(err) {
			return fmt.Errorf("want an OAuthAuthorizationRequiredError, got: %w", err)
		}
		handler = client.GetOAuthHandler(err)
		if handler == nil {
			return errors.New("the error carries no OAuth handler")
		}
		if o.storedToken == "" {
			// Without a token mcp-go does not send the request at all.
			if xs := r.env.journal.since(mark); len(xs) > 0 {
				return fmt.Errorf("the client sent %d request(s) without a token", len(xs))
			}
			return nil
		}
		// The refusal's resource_metadata is what the client follows.
		if got := client.GetResourceMetadataURL(err); got != r.env.prmURL {
			return fmt.Errorf("resource_metadata taken from the challenge = %q, want %q", got, r.env.prmURL)
		}
		return nil
	})
	if o.storedToken != "" {
		r.expectAnswer(connectStep(o.era)+" with the stored token", mark, 401, o.challenge)
	}
	r.step("dynamic client registration (after protected-resource and authorization-server metadata discovery)", func() error {
		return handler.RegisterClient(ctx, "e2e-mcp-go")
	})
	var verifier, state, authURL string
	r.step("authorization URL", func() error {
		var err error
		if verifier, err = client.GenerateCodeVerifier(); err != nil {
			return err
		}
		if state, err = client.GenerateState(); err != nil {
			return err
		}
		authURL, err = handler.GetAuthorizationURL(ctx, state, client.GenerateCodeChallenge(verifier))
		return err
	})
	var code, gotState string
	r.step("PKCE authorization (no-redirect GET)", func() error {
		var err error
		code, gotState, _, err = r.authorizeWithoutBrowser(ctx, authURL)
		if err == nil && gotState != state {
			err = fmt.Errorf("the redirect carries state %q, want %q", gotState, state)
		}
		return err
	})
	r.step("token exchange", func() error {
		return handler.ProcessAuthorizationResponse(ctx, code, gotState, verifier)
	})
}

// connectMCPGo connects after sign-in and checks the era negotiated.
func (r *run) connectMCPGo(ctx context.Context, c *client.Client, era string) {
	r.t.Helper()
	r.step(connectStep(era), func() error {
		res, err := c.Initialize(ctx, initializeRequest())
		if err != nil {
			return err
		}
		if res.ProtocolVersion != era {
			return fmt.Errorf("negotiated protocol version %q, want %q", res.ProtocolVersion, era)
		}
		return nil
	})
}

// whoamiMCPGo calls whoami and checks the sub it returns.
func (r *run) whoamiMCPGo(ctx context.Context, c *client.Client) {
	r.t.Helper()
	r.step("tools/call whoami", func() error {
		req := mcp.CallToolRequest{}
		req.Params.Name = "whoami"
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return err
		}
		return r.checkSub(res.IsError, toolText(res.Content))
	})
}

func toolText(content []mcp.Content) string {
	if len(content) == 0 {
		return ""
	}
	if tc, ok := content[0].(mcp.TextContent); ok {
		return tc.Text
	}
	return fmt.Sprintf("%#v", content[0])
}

// checkSub checks a whoami result.
func (r *run) checkSub(isError bool, text string) error {
	switch {
	case isError:
		return fmt.Errorf("whoami returned a tool error: %s", text)
	case text != r.env.subject():
		return fmt.Errorf("whoami returned sub %q, want %q", text, r.env.subject())
	}
	return nil
}

func initializeRequest() mcp.InitializeRequest {
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "e2e-mcp-go", Version: "1.0.0"}
	return req
}

// runMCPGo is the whole run: sign-in, connection, whoami.
func (r *run) runMCPGo(o mcpGoOptions) *client.Client {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	r.t.Cleanup(cancel)
	c := r.newMCPGo(ctx, o)
	r.signInMCPGo(ctx, c, o)
	r.connectMCPGo(ctx, c, o.era)
	r.whoamiMCPGo(ctx, c)
	r.checkStages(r.log.all(), o.era)
	r.checkEra(o.era)
	return c
}
