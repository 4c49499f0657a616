package descope_test

import (
	"context"
	"errors"
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

// Protect an mcp-go server. In production, WellKnownURL comes from the
// Descope console (DESCOPE_CONFIG_URL) and the server runs with
// server.NewStreamableHTTPServer(s, auth.WithProvider(p)).Start(addr);
// here a fake Descope and an httptest server stand in.
func ExampleNew() {
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

	s := server.NewMCPServer("notes", "1.0.0")
	srv := httptest.NewServer(auth.Handler(p, server.NewStreamableHTTPServer(s)))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/mcp", "application/json", strings.NewReader(`{}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	fmt.Println(resp.Header.Get("WWW-Authenticate"))
	// Output:
	// 401
	// Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
}

// A tool reads the caller, with Descope's roles and tenants. In a test,
// auth.WithClaims stands in for the middleware.
func ExampleClaimsFromContext() {
	whoami := func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, ok := descope.ClaimsFromContext(ctx)
		if !ok {
			return mcp.NewToolResultError("not signed in"), nil
		}
		return mcp.NewToolResultText(fmt.Sprintf("%s has roles %v in tenant %s", c.Subject, c.Roles, c.CurrentTenant)), nil
	}

	caller := &auth.Claims{Subject: "U2alice"}
	caller.Extra = &descope.Claims{Claims: caller, Roles: []string{"editor"}, CurrentTenant: "T1"}
	res, _ := whoami(auth.WithClaims(context.Background(), caller), mcp.CallToolRequest{})
	fmt.Println(res.Content[0].(mcp.TextContent).Text)
	// Output:
	// U2alice has roles [editor] in tenant T1
}

// Verify a token directly, outside HTTP, for instance in a test.
func ExampleProvider_VerifyToken() {
	fake := descopetest.NewServer(descopetest.WithUser(descopetest.User{Subject: "U2bob", Roles: []string{"admin"}}))
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

	claims, err := p.VerifyToken(context.Background(), fake.Mint(map[string]any{"aud": "https://mcp.example.com/mcp", "scope": "notes:read"}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject, claims.Scopes, claims.Extra.(*descope.Claims).Roles)

	_, err = p.VerifyToken(context.Background(), fake.Mint(map[string]any{"aud": "https://other.example/mcp"}))
	fmt.Println(err != nil, errors.Is(err, auth.ErrInvalidToken))
	// Output:
	// U2bob [notes:read] [admin]
	// true true
}
