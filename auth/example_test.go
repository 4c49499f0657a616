package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// The one-line setup: the option makes Start serve the protected endpoint
// and the discovery documents on one listener.
func ExampleWithProvider() {
	p, err := descope.New(descope.ConfigFromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	s := server.NewMCPServer("notes", "1.0.0")
	log.Fatal(server.NewStreamableHTTPServer(s, auth.WithProvider(p)).Start(":8080"))
}

// With a mux of your own: bind the MCP server's sessions to their callers,
// guard it with Middleware, and mount the provider's discovery routes
// beside it. Browser clients on other origins must be listed.
func ExampleMiddleware() {
	fake := descopetest.NewServer()
	defer fake.Close()
	p, err := descope.New(descope.Config{
		WellKnownURL: fake.WellKnownURL(),
		ServerURL:    "https://mcp.example.com",
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	mux := http.NewServeMux()
	var secret []byte // shared by every replica; nil: random for this process
	mcpServer := server.NewStreamableHTTPServer(server.NewMCPServer("notes", "1.0.0"), auth.SessionBinding(secret))
	guard := auth.Middleware(p, auth.WithAllowedOrigins("https://mcp.example.com", "http://localhost:*"))
	mux.Handle("/mcp", guard(mcpServer))
	for _, rt := range p.Routes() {
		mux.Handle(rt.Path, rt.Handler)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.KeyStatus().Loaded {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})

	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/mcp", "/.well-known/oauth-protected-resource/mcp"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode)
	}
	// Output:
	// /mcp 401
	// /.well-known/oauth-protected-resource/mcp 200
}

// A Policy holds resource templates to their requirements everywhere: a
// caller that fails a template's rule does not see it listed, and cannot
// read, subscribe to or complete a URI under it.
func ExamplePolicy_AddResourceTemplate() {
	pol := auth.NewPolicy()
	s := server.NewMCPServer("notes", "1.0.0", pol.ServerOptions()...)
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "..."}}, nil
	}
	staff := auth.RequireRule(func(c *auth.Claims) bool { return strings.HasSuffix(c.Subject, "@staff") })
	pol.AddResourceTemplate(s, mcp.NewResourceTemplate("notes://public/{id}", "public notes"), read)
	pol.AddResourceTemplate(s, mcp.NewResourceTemplate("notes://staff/{id}", "staff notes"), read, staff)

	// Behind auth.Middleware the claims come from the access token.
	for _, who := range []string{"ann@staff", "bob"} {
		ctx := auth.WithClaims(context.Background(), &auth.Claims{Subject: who})
		var list struct {
			Result struct {
				ResourceTemplates []struct{ Name string }
			}
		}
		var got struct {
			Error *struct{ Message string }
		}
		decode(s.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`)), &list)
		decode(s.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"notes://staff/7"}}`)), &got)
		outcome := "read"
		if got.Error != nil {
			outcome = got.Error.Message
		}
		fmt.Println(who, list.Result.ResourceTemplates, outcome)
	}
	// Output:
	// ann@staff [{public notes} {staff notes}] read
	// bob [{public notes}] access denied
}

// decode turns an mcp-go response into v.
func decode(msg mcp.JSONRPCMessage, v any) {
	b, err := json.Marshal(msg)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		log.Fatal(err)
	}
}
