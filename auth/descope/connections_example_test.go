package descope_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth/descope"
)

// A tool that calls Google Calendar as the signed-in user: the user's
// Google token comes from Descope's vault, fetched with the user's own MCP
// access token (which must carry outbound.token.fetch). A user who has not
// connected Google is asked to, the best way their client supports.
func ExampleConnections_Token() {
	p, err := descope.New(descope.ConfigFromEnv())
	if err != nil {
		log.Fatal(err)
	}
	conns, err := p.Connections(descope.ConnectionsConfig{})
	if err != nil {
		log.Fatal(err)
	}
	s := server.NewMCPServer("calendar", "1.0.0")
	s.AddTool(mcp.NewTool("next_meeting"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tok, err := conns.Token(ctx, descope.ConnectionRequest{
			App:    "google-calendar",
			Scopes: []string{"https://www.googleapis.com/auth/calendar.readonly"},
		})
		if err != nil {
			return descope.ConnectionToolResult(ctx, req, err)
		}
		// Call the calendar API with "Authorization: " + tok.Type + " " + tok.AccessToken.
		return mcp.NewToolResultText(fmt.Sprintf("token good until %s", tok.Expiry)), nil
	})
}

// Branching on the kind of failure instead, for a tool that words its own
// answers.
func ExampleConnectionError() {
	var conns *descope.Connections // from Provider.Connections
	handler := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		_, err := conns.Token(ctx, descope.ConnectionRequest{App: "github"})
		var ce *descope.ConnectionError
		switch {
		case err == nil:
			return mcp.NewToolResultText("connected"), nil
		case errors.Is(err, descope.ErrNotConnected) && errors.As(err, &ce) && ce.ConnectURL != "":
			return mcp.NewToolResultError("Connect GitHub first: " + ce.ConnectURL), nil
		case errors.Is(err, descope.ErrConnectionScope):
			return mcp.NewToolResultError("Sign in again and allow " + descope.ScopeOutboundTokenFetch + "."), nil
		case errors.Is(err, descope.ErrConnectionUnavailable):
			return mcp.NewToolResultError("GitHub cannot be reached right now; try again."), nil
		default:
			return descope.ConnectionToolResult(ctx, req, err)
		}
	}
	_ = handler
}
