// Command server is the MCP server that BenchmarkOperatorLoad (e2e/load_test.go)
// runs as its own process: shaped like a real deployment of the library,
// and, with -unprotected, the same mcp-go server without it, as the
// baseline. It is not an example: read example/ for how to use the library.
//
// Protected, it serves an mcp-go StreamableHTTPServer with an auth.Policy
// (a whoami open to every signed-in caller, and a write_note that needs
// notes:write), sessions bound to their callers (auth.SessionBinding), all
// behind auth.Handler with a descope provider configured from the
// environment (DESCOPE_CONFIG_URL: the benchmark's fake Descope).
// Unprotected, it serves the same tools registered directly on the same
// kind of mcp-go server, on the same kind of http.Server: no middleware, no
// binding, no policy hooks; whoami then reports a fixed caller whose reply
// has the size of a real one. With -no-policy the protected server keeps
// the middleware and the binding but registers its tools directly, which
// shows what the Policy costs; -passthrough serves the unprotected program
// behind a middleware that only reads the body and adds a context value,
// the least any middleware that decides on a POST's message costs.
//
// Once it serves, it prints one line on stdout:
//
//	loadbench: serving <resource URL> debug <debug URL> gomaxprocs <n>
//
// The debug listener, on another loopback port, serves /debug/memstats
// (runtime.MemStats as JSON) and /debug/pprof/. SIGINT or SIGTERM ends it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	rpprof "runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

const (
	scopeRead  = "notes:read"
	scopeWrite = "notes:write"
)

// fixedCaller is whom the unprotected whoami reports. Its fields have the
// lengths of the benchmark's callers (a 28-character Descope user ID, the
// fake's client ID, one scope, one role), so both variants send replies of
// the same size; the benchmark checks that they do.
var fixedCaller = identity{
	Sub:      "U2fixedcaller000000000000000",
	ClientID: descopetest.DefaultClientID,
	Scopes:   []string{scopeRead},
	Roles:    []string{"reader"},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench: "+err.Error())
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "address of the MCP endpoint")
	debugAddr := flag.String("debug-addr", "127.0.0.1:0", "address of /debug/memstats and /debug/pprof/ (empty: none)")
	unprotected := flag.Bool("unprotected", false, "serve the same mcp-go server without the library")
	cacheSize := flag.Int("token-cache-size", 0, "descope.Config.TokenCacheSize (0: the default)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	passthrough := flag.Bool("passthrough", false, "the unprotected server behind a middleware that only reads the body and adds a context value (the floor of any middleware)")
	noPolicy := flag.Bool("no-policy", false, "protected, but without auth.Policy (to see what it costs)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()

	var handler http.Handler
	resource := base + "/mcp"
	if *unprotected || *passthrough {
		mcpHTTP := server.NewStreamableHTTPServer(plainServer(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return jsonResult(fixedCaller)
		}))
		mux := http.NewServeMux()
		mux.Handle("/mcp", mcpHTTP)
		handler = mux
		if *passthrough {
			handler = passthroughMiddleware(mux)
		}
	} else {
		cfg := descope.ConfigFromEnv()
		cfg.ServerURL = base
		cfg.TokenCacheSize = *cacheSize
		cfg.Logger = log
		p, err := descope.New(cfg)
		if err != nil {
			return err
		}
		defer p.Close()
		if err := waitForKeys(ctx, p); err != nil {
			return err
		}
		resource = p.ProtectedResource().URL
		pol := auth.NewPolicy(auth.WithScopeHierarchy(map[string][]string{scopeWrite: {scopeRead}}))
		mcpServer, opts := protectedServer(pol), []auth.Option{auth.WithPolicy(pol), auth.WithLogger(log)}
		if *noPolicy {
			mcpServer, opts = plainServer(whoami), opts[1:]
		}
		handler = auth.Handler(p, server.NewStreamableHTTPServer(mcpServer, auth.SessionBinding(nil)), opts...)
	}

	debugURL := ""
	if *debugAddr != "" {
		dln, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return err
		}
		defer dln.Close()
		debugURL = "http://" + dln.Addr().String()
		go func() { _ = http.Serve(dln, debugHandler()) }()
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := rpprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer rpprof.StopCPUProfile()
	}

	// The same http.Server settings for both variants, those that
	// auth.WithProvider would choose.
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: auth.DefaultReadHeaderTimeout,
		IdleTimeout: auth.DefaultIdleTimeout, MaxHeaderBytes: 4 * auth.DefaultMaxHeaderBytes}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Printf("loadbench: serving %s debug %s gomaxprocs %d\n", resource, debugURL, runtime.GOMAXPROCS(0))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// passthroughMiddleware does what any middleware that decides on a POST's
// message must do, and nothing else: read the body, hand the next handler
// a copy, and put a value in the request's context.
func passthroughMiddleware(next http.Handler) http.Handler {
	type key struct{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "unreadable body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, r.URL.Path)))
	})
}

// waitForKeys waits until the provider has loaded the signing keys, so the
// benchmark never meets a 503.
func waitForKeys(ctx context.Context, p *descope.Provider) error {
	deadline := time.Now().Add(10 * time.Second)
	for !p.KeyStatus().Loaded {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("the signing keys did not load (is DESCOPE_CONFIG_URL right?)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func whoamiTool() mcp.Tool {
	return mcp.NewTool("whoami",
		mcp.WithDescription("Shows who you are signed in as: subject, client, scopes and roles."),
		mcp.WithReadOnlyHintAnnotation(true))
}

func writeNoteTool() mcp.Tool {
	return mcp.NewTool("write_note",
		mcp.WithDescription("Saves a note. Needs the "+scopeWrite+" scope."),
		mcp.WithString("text", mcp.Required(), mcp.Description("The note's text.")))
}

// protectedServer registers the tools through the policy, as a protected
// deployment does.
func protectedServer(pol *auth.Policy) *server.MCPServer {
	s := server.NewMCPServer("loadbench", "1.0.0", append(pol.ServerOptions(), server.WithToolCapabilities(false))...)
	pol.AddTool(s, whoamiTool(), whoami)
	pol.AddTool(s, writeNoteTool(), writeNote, auth.RequireScopes(scopeWrite))
	return s
}

// plainServer registers the same tools directly: no hooks, no filters.
func plainServer(whoami server.ToolHandlerFunc) *server.MCPServer {
	s := server.NewMCPServer("loadbench", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(whoamiTool(), whoami)
	s.AddTool(writeNoteTool(), writeNote)
	return s
}

// identity is what whoami reports.
type identity struct {
	Sub           string   `json:"sub"`
	ClientID      string   `json:"client_id"`
	Scopes        []string `json:"scopes"`
	Roles         []string `json:"roles"`
	CurrentTenant string   `json:"current_tenant"`
}

func whoami(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError("this tool needs a signed-in caller"), nil
	}
	return jsonResult(identity{Sub: c.Subject, ClientID: c.ClientID, Scopes: c.Scopes, Roles: c.Roles, CurrentTenant: c.CurrentTenant})
}

// writeNote is never called by the benchmark: it is there so that the
// policy has a guarded tool to filter, as a real server has.
func writeNote(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if text, err := req.RequireString("text"); err != nil || strings.TrimSpace(text) == "" {
		return mcp.NewToolResultError("text is required"), nil
	}
	return mcp.NewToolResultText("saved"), nil
}

// jsonResult encodes v per call in both variants, so that the encoding is
// not a difference between them.
func jsonResult(v identity) (*mcp.CallToolResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(string(b)), nil
}

// memStats is the part of runtime.MemStats the benchmark reads.
type memStats struct {
	Mallocs    uint64 `json:"mallocs"`
	TotalAlloc uint64 `json:"total_alloc"`
	NumGC      uint32 `json:"num_gc"`
}

func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/memstats", func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(memStats{Mallocs: m.Mallocs, TotalAlloc: m.TotalAlloc, NumGC: m.NumGC})
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
