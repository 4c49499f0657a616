package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
)

// BenchmarkPolicyHooks measures what a Policy's mcp-go hooks add to a
// tools/call with a 4 KiB argument, against the same server without them.
func BenchmarkPolicyHooks(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` +
		strings.Repeat("x", 4096) + `"}}}`)
	echo := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}
	ctx := auth.WithClaims(context.Background(), &auth.Claims{Subject: "U2bench"})
	for _, tc := range []struct {
		name   string
		policy bool
	}{{"baseline", false}, {"policy", true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := server.NewMCPServer("bench", "1.0.0")
			if tc.policy {
				pol := auth.NewPolicy()
				s = server.NewMCPServer("bench", "1.0.0", pol.ServerOptions()...)
				pol.AddTool(s, mcp.NewTool("echo"), echo)
			} else {
				s.AddTool(mcp.NewTool("echo"), echo)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.HandleMessage(ctx, body).(mcp.JSONRPCResponse); !ok {
					b.Fatal("tools/call failed")
				}
			}
		})
	}
}
