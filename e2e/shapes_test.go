package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// shapeTenant is the tenant of the tenant-issuer mode.
const shapeTenant = "T2acme00000000000000000000000"

// shape is one way real Descope behaves, as the fake reproduces it, and
// what the library must do about it.
type shape struct {
	name string
	// fake returns the fake Descope's options and, for client ID metadata
	// documents, the client_id URL clients that support them use.
	fake func(t *testing.T) (opts []descopetest.Option, clientIDURL string)
	// config adjusts the provider's Config.
	config func(*descope.Config, *descopetest.Server)
	// authorizationServer is the issuer the resource metadata must name
	// once discovery is fetched.
	authorizationServer func(*descopetest.Server) string
	// tenant is the IssuerTenant whoami must see, if any.
	tenant string
}

func opts(o ...descopetest.Option) func(*testing.T) ([]descopetest.Option, string) {
	return func(*testing.T) ([]descopetest.Option, string) { return o, "" }
}

var shapes = []shape{
	{
		name:                "issuer-drift",
		fake:                opts(descopetest.WithIssuerDrift()),
		authorizationServer: (*descopetest.Server).ProjectIssuer,
	},
	{
		name:                "tenant-issuer",
		fake:                opts(descopetest.WithTenantIssuer(shapeTenant)),
		authorizationServer: (*descopetest.Server).AgenticIssuer,
		tenant:              shapeTenant,
	},
	{
		name: "custom-domain",
		fake: opts(descopetest.WithCustomDomain()),
		config: func(c *descope.Config, ds *descopetest.Server) {
			c.IssuerOrigins = []string{ds.CustomDomainURL()}
		},
		authorizationServer: (*descopetest.Server).AgenticIssuer,
	},
	{
		name: "cimd",
		fake: func(t *testing.T) ([]descopetest.Option, string) {
			docs := clientIDMetadataDocument(t)
			return []descopetest.Option{descopetest.WithClientIDMetadataDocuments(docs.Client())}, docs.URL + clientDocumentPath
		},
		authorizationServer: (*descopetest.Server).AgenticIssuer,
	},
	{
		name: "cimd-unfetched",
		fake: func(*testing.T) ([]descopetest.Option, string) {
			return []descopetest.Option{descopetest.WithUnfetchedClientIDMetadataDocuments()}, "https://client.example" + clientDocumentPath
		},
		authorizationServer: (*descopetest.Server).AgenticIssuer,
	},
	{
		name:                "rfc9207-iss",
		fake:                opts(descopetest.WithAuthorizationResponseIssuer()),
		authorizationServer: (*descopetest.Server).AgenticIssuer,
	},
	{
		name:                "issuer-drift+rfc9207-iss",
		fake:                opts(descopetest.WithIssuerDrift(), descopetest.WithAuthorizationResponseIssuer()),
		authorizationServer: (*descopetest.Server).ProjectIssuer,
	},
}

const clientDocumentPath = "/oauth/e2e-client.json"

// clientIDMetadataDocument serves the e2e clients' metadata document over
// TLS; the fake Descope fetches it through the server's own client.
func clientIDMetadataDocument(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != clientDocumentPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  srv.URL + clientDocumentPath,
			"client_name":                "e2e client",
			"redirect_uris":              []string{redirectURI},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newShapeEnv starts an env in shape sh and waits until the resource
// metadata names the authorization server it must; the env's idea of the
// authorization server's endpoints is then that server's document.
func newShapeEnv(t *testing.T, sh shape) (*env, string) {
	t.Helper()
	dsOpts, clientIDURL := sh.fake(t)
	e := newEnv(t, setup{layout: rootLayout, ds: dsOpts, config: sh.config, mcpServer: tenantWhoamiServer(sh.tenant)})
	want := sh.authorizationServer(e.ds)
	for deadline := time.Now().Add(10 * time.Second); e.p.AuthorizationServer() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the resource metadata names %q, want %q", e.p.AuthorizationServer(), want)
		}
	}
	resp, err := http.Get(e.prmURL)
	if err != nil {
		t.Fatal(err)
	}
	var prm struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	err = json.NewDecoder(resp.Body).Decode(&prm)
	resp.Body.Close()
	if err != nil || !slices.Equal(prm.AuthorizationServers, []string{want}) {
		t.Fatalf("resource metadata authorization_servers = %q (%v), want [%q]", prm.AuthorizationServers, err, want)
	}
	resp, err = http.Get(want + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	e.as = asMetadata{}
	err = json.NewDecoder(resp.Body).Decode(&e.as)
	resp.Body.Close()
	if err != nil || e.as.Issuer != want {
		t.Fatalf("the authorization server's document declares %q (%v), want %q", e.as.Issuer, err, want)
	}
	return e, clientIDURL
}

// tenantWhoamiServer is whoamiServer whose whoami also insists on the
// issuer's tenant (none when tenant is empty), so a run proves the tenant
// reached the tool.
func tenantWhoamiServer(tenant string) *server.MCPServer {
	s := server.NewMCPServer("e2e-whoami", "1.0.0")
	s.AddTool(whoamiTool(), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, ok := descope.ClaimsFromContext(ctx)
		switch {
		case !ok:
			return mcp.NewToolResultError("no authenticated caller"), nil
		case c.IssuerTenant != tenant:
			return mcp.NewToolResultError(fmt.Sprintf("issuer tenant %q, want %q", c.IssuerTenant, tenant)), nil
		}
		return mcp.NewToolResultText(c.Subject), nil
	})
	return s
}

// TestShapes signs each client in, through the whole flow, against each
// shape of Descope, in each era it speaks:
//
//	TestShapes/<shape>/<client>/<era>
//
// Where a client lacks a feature it goes the way it knows: mcp-go has no
// client ID metadata documents and registers; mcp-go and the TypeScript
// SDK do not read RFC 9207's iss. The Go SDK checks both, and, like mcp-go,
// that an authorization server's document declares the issuer it was
// fetched for, which is what issuer drift breaks unless the resource
// metadata names the declared issuer.
func TestShapes(t *testing.T) {
	t.Parallel()
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			for _, era := range []string{eraModern, eraLegacy} {
				t.Run("mcp-go/"+era, func(t *testing.T) {
					t.Parallel()
					e, _ := newShapeEnv(t, sh)
					newRun(t, "mcp-go/"+era+"/"+sh.name, e).runMCPGo(mcpGoOptions{era: era})
				})
				t.Run("go-sdk/"+era, func(t *testing.T) {
					t.Parallel()
					e, clientIDURL := newShapeEnv(t, sh)
					r := newRun(t, "go-sdk/"+era+"/"+sh.name, e)
					if clientIDURL == "" {
						r.runGoSDK(goSDKOptions{era: era})
						return
					}
					r.runGoSDKWithClientIDURL(era, clientIDURL)
				})
			}
			t.Run("ts-sdk/"+eraLegacy, func(t *testing.T) {
				t.Parallel()
				e, clientIDURL := newShapeEnv(t, sh)
				r := newRun(t, "ts-sdk/"+eraLegacy+"/"+sh.name, e)
				res := r.runTS(tsOptions{ClientMetadataURL: clientIDURL})
				r.okTS(res, 1)
				r.checkSignIn(res.Trace, eraLegacy, clientIDURL)
				r.checkEra(eraLegacy)
			})
		})
	}
}

// runGoSDKWithClientIDURL is runGoSDK for a client whose client_id is the
// URL of its metadata document: it offers registration too, but must not
// use it where the authorization server takes the document.
func (r *run) runGoSDKWithClientIDURL(era, clientIDURL string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	r.t.Cleanup(cancel)
	hc := recordingClient(r.log)
	var h *auth.AuthorizationCodeHandler
	r.step("new authorization-code handler", func() error {
		var err error
		h, err = auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
			ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: clientIDURL},
			DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
				Metadata: &oauthex.ClientRegistrationMetadata{
					ClientName:              "e2e-go-sdk",
					RedirectURIs:            []string{redirectURI},
					TokenEndpointAuthMethod: "none",
				},
			},
			RedirectURL: redirectURI,
			AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
				code, state, iss, err := r.authorizeWithoutBrowser(ctx, args.URL)
				if err != nil {
					return nil, fmt.Errorf("PKCE authorization (no-redirect GET): %w", err)
				}
				return &auth.AuthorizationResult{Code: code, State: state, Iss: iss}, nil
			},
			Client: hc,
		})
		return err
	})
	c := sdk.NewClient(&sdk.Implementation{Name: "e2e-go-sdk", Version: "1.0.0"}, nil)
	var cs *sdk.ClientSession
	r.step("connect: discovery, PKCE authorization with the document's URL as client_id, token exchange, "+connectStep(era), func() error {
		var err error
		cs, err = c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: r.env.mcpURL, HTTPClient: hc, OAuthHandler: h},
			&sdk.ClientSessionOptions{ProtocolVersion: era})
		if err != nil {
			return err
		}
		if v := cs.InitializeResult().ProtocolVersion; v != era {
			return fmt.Errorf("negotiated protocol version %q, want %q", v, era)
		}
		return nil
	})
	r.t.Cleanup(func() { _ = cs.Close() })
	r.whoamiGoSDK(ctx, cs)
	r.checkSignIn(r.log.all(), era, clientIDURL)
	r.checkEra(era)
}

// checkSignIn checks the stages of the flow in the client's exchanges;
// with a client ID metadata document, registration must not be among
// them and the authorization request must name the document's URL.
func (r *run) checkSignIn(xs []exchange, era, clientIDURL string) {
	r.t.Helper()
	if clientIDURL == "" {
		r.checkStages(xs, era)
		return
	}
	i := 0
	for _, st := range r.env.flowStages(era) {
		if st.name == "dynamic client registration" {
			continue
		}
		j := slices.IndexFunc(xs[i:], st.match)
		if j < 0 {
			var b strings.Builder
			writeExchanges(&b, xs)
			r.failf(st.name, "the client's exchanges do not show this stage after the previous ones; the client sent:%s", b.String())
		}
		i += j + 1
	}
	for _, x := range xs {
		if x.Method == http.MethodPost && x.URL == r.env.as.RegistrationEndpoint {
			r.failf("client ID metadata document", "the client registered although the authorization server takes its document")
		}
		if strings.HasPrefix(x.URL, r.env.as.AuthorizationEndpoint+"?") {
			u, _ := url.Parse(x.URL)
			if got := u.Query().Get("client_id"); got != clientIDURL {
				r.failf("client ID metadata document", "the authorization request names client_id %q, want %q", got, clientIDURL)
			}
		}
	}
}
