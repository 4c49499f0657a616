package descope_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// whoamiServer is an MCP server whose one tool reports the caller as the
// library hands it to tools.
func whoamiServer() *server.MCPServer {
	s := server.NewMCPServer("whoami-test", "1.0.0")
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, ok := descope.ClaimsFromContext(ctx)
		if !ok {
			return mcp.NewToolResultError("no caller"), nil
		}
		b, _ := json.Marshal(map[string]any{"sub": c.Subject, "roles": c.Roles, "tenants": c.Tenants})
		return mcp.NewToolResultText(string(b)), nil
	})
	return s
}

// startWithProvider runs a protected server the way the README shows:
// NewStreamableHTTPServer(s, auth.WithProvider(p)).Start(addr).
func startWithProvider(t *testing.T, ds *descopetest.Server) (string, *descope.Provider) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	p, err := descope.New(descope.Config{WellKnownURL: ds.WellKnownURL(), ServerURL: "http://" + addr})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	srv := server.NewStreamableHTTPServer(whoamiServer(), auth.WithProvider(p))
	started := make(chan error, 1)
	go func() { started <- srv.Start(addr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-started; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Start: %v", err)
		}
	})
	// Wait until the listener answers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/.well-known/oauth-protected-resource/mcp")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "server did not start: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addr, p
}

func TestToolReadsCallerThroughWithProvider(t *testing.T) {
	ds := descopetest.NewServer(descopetest.WithUser(descopetest.User{
		Subject: "U2carol",
		Roles:   []string{"admin"},
		Tenants: map[string]descopetest.Tenant{"T9": {Roles: []string{"member"}}},
	}))
	t.Cleanup(ds.Close)
	base, p := startWithProvider(t, ds)
	token := ds.Mint(map[string]any{"aud": p.ProtectedResource().URL})

	for _, era := range []struct{ name, version string }{
		{"2026-07-28 sessionless", ""},
		{"2025-11-25 session", mcp.ProtocolVersion20251125},
	} {
		t.Run(era.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tr, err := transport.NewStreamableHTTP(base+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
			require.NoError(t, err)
			var opts []client.ClientOption
			if era.version != "" {
				opts = append(opts, client.WithProtocolVersion(era.version))
			}
			c := client.NewClient(tr, opts...)
			defer c.Close()
			require.NoError(t, c.Start(ctx))
			init := mcp.InitializeRequest{}
			init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
			init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
			if era.version != "" {
				init.Params.ProtocolVersion = era.version
			}
			_, err = c.Initialize(ctx, init)
			require.NoError(t, err)
			req := mcp.CallToolRequest{}
			req.Params.Name = "whoami"
			res, err := c.CallTool(ctx, req)
			require.NoError(t, err)
			require.False(t, res.IsError)
			text := res.Content[0].(mcp.TextContent).Text
			assert.JSONEq(t, `{"sub":"U2carol","roles":["admin"],"tenants":{"T9":{"roles":["member"]}}}`, text)
		})
	}

	// Without a token the same endpoint refuses, and discovery stays open.
	resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`, resp.Header.Get("WWW-Authenticate"))
}
