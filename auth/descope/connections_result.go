package descope

// connections_result.go turns a failed Connections.Token call into what an
// mcp-go tool handler returns: for a user who has not connected the app,
// a URL-mode elicitation when the client takes one, otherwise the link in
// a tool error.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ConnectionToolResult is what a tool handler returns when
// Connections.Token failed with err; request is the handler's own. For a
// user who has not connected the app, and a connect link Descope gave:
//
//   - a client that declared URL-mode elicitation is asked to open the
//     link (an input request: protocol 2026-07-28 clients answer it and
//     call the tool again; for older clients mcp-go sends elicitation/create
//     and calls the handler again). The handler runs again with the
//     answer. The client's "accept" says only that the user agreed to open
//     the link, so they may not have finished connecting yet: then Token
//     fails again and this returns a tool error asking them to finish and
//     call the tool again; if they were quicker (or the client waits),
//     Token succeeds in the same call;
//   - any other client gets a tool error carrying the link, which the user
//     opens before calling the tool again.
//
// A tenant's connection has no link (Descope's would connect the user's
// own account): the tool error says an administrator must connect it. The
// other ConnectionError kinds become tool errors that say what the user
// can do (sign in again granting ScopeOutboundTokenFetch, retry later).
// The texts name the app and hold, of Descope's answer, only the connect
// link; never an error text or code. An err that is not a
// *ConnectionError is returned as is.
func ConnectionToolResult(ctx context.Context, request mcp.CallToolRequest, err error) (*mcp.CallToolResult, error) {
	var ce *ConnectionError
	if !errors.As(err, &ce) {
		return nil, err
	}
	switch {
	case errors.Is(ce, ErrNotConnected) && ce.ConnectURL != "":
		id := connectInputID(ce.App)
		if answer := server.ElicitationResponse(request.Params.InputResponses, id); answer != nil {
			if answer.Action == mcp.ElicitationResponseActionAccept {
				return mcp.NewToolResultError(fmt.Sprintf(
					"%s is not connected yet. Finish connecting it at %s, then call this tool again.", ce.App, ce.ConnectURL)), nil
			}
			return mcp.NewToolResultError(fmt.Sprintf(
				"This tool needs %s, and connecting it was declined. To connect it later, open %s.", ce.App, ce.ConnectURL)), nil
		}
		if clientTakesURLElicitation(ctx) {
			return server.NewInputRequestBuilder("").Elicit(id, mcp.ElicitationParams{
				Mode:          mcp.ElicitationModeURL,
				Message:       fmt.Sprintf("This tool needs your %s account. Connect it in your browser.", ce.App),
				ElicitationID: newElicitationID(),
				URL:           ce.ConnectURL,
			}).ToolResult(), nil
		}
		return mcp.NewToolResultError(fmt.Sprintf(
			"This tool needs your %s account. Connect it at %s, then call this tool again.", ce.App, ce.ConnectURL)), nil
	case errors.Is(ce, ErrNotConnected) && ce.TenantWide:
		return mcp.NewToolResultError(fmt.Sprintf(
			"This tool needs %s connected for your tenant, which it is not. Ask your tenant's administrator to connect it.", ce.App)), nil
	case errors.Is(ce, ErrNotConnected) && ce.Tenant != "":
		return mcp.NewToolResultError(fmt.Sprintf(
			"This tool needs your %s account connected in your tenant, which it is not. Connect it in the tenant's Descope settings, or ask its administrator.", ce.App)), nil
	case errors.Is(ce, ErrNotConnected):
		return mcp.NewToolResultError(fmt.Sprintf(
			"This tool needs your %s account, which is not connected, and no link to connect it could be made right now. Try again later.", ce.App)), nil
	case errors.Is(ce, ErrConnectionScope):
		return mcp.NewToolResultError(fmt.Sprintf(
			"This tool needs the %s scope, which your sign-in did not grant. Sign in again and allow it.", ce.Scope)), nil
	case errors.Is(ce, ErrConnectionUnavailable):
		return mcp.NewToolResultError(fmt.Sprintf(
			"Your %s token cannot be fetched right now. Try again in a moment.", ce.App)), nil
	default:
		return mcp.NewToolResultError(fmt.Sprintf(
			"Descope did not hand out your %s token. Ask the server's administrator to check the app's connection settings.", ce.App)), nil
	}
}

// connectInputID names the input request for app's connect link, the same
// on every call so that the handler recognises the answer when called
// again.
func connectInputID(app string) string { return "descope.connect." + app }

// newElicitationID is an unguessable ID for one URL-mode elicitation.
func newElicitationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// clientTakesURLElicitation reports whether the client declared URL-mode
// elicitation: in the request's _meta from protocol 2026-07-28 on (servers
// must not infer it from earlier requests), else at initialize.
func clientTakesURLElicitation(ctx context.Context) bool {
	var caps *mcp.ClientCapabilities
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		caps = info.ClientCapabilities
	} else if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		c := s.GetClientCapabilities()
		caps = &c
	}
	return caps != nil && caps.Elicitation != nil && caps.Elicitation.URL != nil
}
