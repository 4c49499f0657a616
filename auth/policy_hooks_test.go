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

// TestRuleFreePolicyCostsToolCallsNothing: a Policy whose tools have no
// rules installs no list filter, which mcp-go would run, copying the tool,
// on every tools/call: such a call allocates exactly what it does without
// the Policy.
func TestRuleFreePolicyCostsToolCallsNothing(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	echo := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}
	ctx := auth.WithClaims(context.Background(), &auth.Claims{Subject: "U2bench"})
	allocs := func(s *server.MCPServer) float64 {
		return testing.AllocsPerRun(200, func() {
			if _, ok := s.HandleMessage(ctx, body).(mcp.JSONRPCResponse); !ok {
				t.Fatal("tools/call failed")
			}
		})
	}
	plain := server.NewMCPServer("bench", "1.0.0")
	plain.AddTool(mcp.NewTool("echo"), echo)
	pol := auth.NewPolicy()
	guarded := server.NewMCPServer("bench", "1.0.0", pol.ServerOptions()...)
	pol.AddTool(guarded, mcp.NewTool("echo"), echo)
	pol.AddTool(guarded, mcp.NewTool("write_note"), echo, auth.RequireScopes("notes:write"))
	if a, b := allocs(plain), allocs(guarded); a != b {
		t.Errorf("tools/call allocates %v times without the Policy and %v times with it", a, b)
	}
}

// TestRulesAddedLaterStillHide: the list filter that a tool's rule needs
// arrives with the first such tool, on every server the Policy serves,
// those attached before it included: the tool is hidden from tools/list,
// and, served without the middleware, its call is "not found".
func TestRulesAddedLaterStillHide(t *testing.T) {
	echo := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}
	pol := auth.NewPolicy()
	first := server.NewMCPServer("first", "1.0.0", pol.ServerOptions()...)
	pol.AddTool(first, mcp.NewTool("open"), echo)
	second := server.NewMCPServer("second", "1.0.0", pol.ServerOptions()...)
	pol.AddTool(second, mcp.NewTool("admin"), echo, auth.RequireRule(func(*auth.Claims) bool { return false }))
	first.AddTool(mcp.NewTool("admin"), echo) // the same name, on the first server directly
	third := server.NewMCPServer("third", "1.0.0", pol.ServerOptions()...)
	third.AddTool(mcp.NewTool("admin"), echo)

	ctx := auth.WithClaims(context.Background(), &auth.Claims{Subject: "U2someone"})
	for _, s := range []*server.MCPServer{first, second, third} {
		list := s.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		res, ok := list.(mcp.JSONRPCResponse)
		if !ok {
			t.Fatalf("tools/list: %#v", list)
		}
		for _, tool := range res.Result.(mcp.ListToolsResult).Tools {
			if tool.Name == "admin" {
				t.Errorf("tools/list shows a tool whose rule fails")
			}
		}
		call := s.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin"}}`))
		e, ok := call.(mcp.JSONRPCError)
		if !ok || !strings.Contains(e.Error.Message, "not found") {
			t.Errorf("tools/call of a hidden tool: %#v", call)
		}
	}
}
