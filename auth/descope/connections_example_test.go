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
// connected Google gets the link to do so.
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
	s.AddTool(mcp.NewTool("next_meeting"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tok, err := conns.Token(ctx, descope.ConnectionRequest{
			App:    "google-calendar",
			Scopes: []string{"https://www.googleapis.com/auth/calendar.readonly"},
		})
		var ce *descope.ConnectionError
		switch {
		case errors.Is(err, descope.ErrNotConnected) && errors.As(err, &ce) && ce.ConnectURL != "":
			return mcp.NewToolResultText("Connect your Google Calendar first: " + ce.ConnectURL), nil
		case errors.Is(err, descope.ErrConnectionScope):
			return mcp.NewToolResultError("Sign in again and allow " + descope.ScopeOutboundTokenFetch + "."), nil
		case err != nil:
			return mcp.NewToolResultError("Google Calendar cannot be reached right now."), nil
		}
		// Call the calendar API with "Authorization: " + tok.Type + " " + tok.AccessToken.
		return mcp.NewToolResultText(fmt.Sprintf("token good until %s", tok.Expiry)), nil
	})
}
