package auth

import (
	"context"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// A Requirement is something a caller must have to use a tool, prompt or
// resource: OAuth scopes, or a rule over the caller's claims (Descope
// roles, permissions and tenants are rules; see package descope).
type Requirement struct {
	scopes []string
	rule   func(*Claims) bool
}

// RequireScopes asks for OAuth scopes. A caller lacking one is answered at
// the transport with 403 insufficient_scope, naming every scope the
// operation needs, so that its client can ask the user for them (step-up).
func RequireScopes(scopes ...string) Requirement {
	return Requirement{scopes: cleanScopes(scopes)}
}

// RequireRule asks for allow(claims) to hold. Re-authorizing does not change
// the outcome of a rule, so a caller that fails it does not see the tool in
// tools/list, and a call gets a tool error; the tool does not run.
func RequireRule(allow func(*Claims) bool) Requirement {
	return Requirement{rule: allow}
}

// DeniedMessage is the text of the tool error a caller gets when a rule
// refuses it. It names nothing the caller lacks.
const DeniedMessage = "Access denied: your account lacks the role, permission or tenant this tool requires."

// Policy records, next to each tool, prompt and resource, what a caller
// needs to use it, and enforces it everywhere: at the transport (scopes,
// with step-up), in lists (hidden when a rule fails) and in the handler.
//
//	pol := auth.NewPolicy(auth.WithScopeHierarchy(map[string][]string{"notes:admin": {"notes:write"}}))
//	s := server.NewMCPServer("notes", "1.0.0", pol.ServerOptions()...)
//	pol.AddTool(s, writeNote, handleWriteNote, auth.RequireScopes("notes:write"))
//	server.NewStreamableHTTPServer(s, auth.WithProvider(p, auth.WithPolicy(pol)))
type Policy struct {
	implies map[string][]string // scope -> every scope it implies, transitively

	mu        sync.RWMutex
	tools     map[string]access
	prompts   map[string]access
	resources map[string]access
}

// access is the combined requirements of one tool, prompt or resource.
type access struct {
	scopes []string
	rules  []func(*Claims) bool
}

func combine(reqs []Requirement) access {
	var a access
	for _, r := range reqs {
		a.scopes = append(a.scopes, r.scopes...)
		if r.rule != nil {
			a.rules = append(a.rules, r.rule)
		}
	}
	a.scopes = cleanScopes(a.scopes)
	return a
}

func (a access) passesRules(c *Claims) bool {
	if c == nil {
		return len(a.rules) == 0
	}
	for _, allow := range a.rules {
		if !allow(c) {
			return false
		}
	}
	return true
}

// PolicyOption configures a Policy.
type PolicyOption func(*Policy)

// WithScopeHierarchy declares broader scopes that imply narrower ones, as
// the MCP spec (2026-07-28) asks servers to honour: with
// {"notes:admin": {"notes:write"}, "notes:write": {"notes:read"}}, a token
// with notes:admin passes a check for notes:read. Every scope decision of
// the Policy, and of the middleware it is given to, uses it.
func WithScopeHierarchy(h map[string][]string) PolicyOption {
	return func(p *Policy) {
		for broad, narrow := range h {
			p.implies[broad] = append(p.implies[broad], narrow...)
		}
	}
}

// NewPolicy returns an empty Policy.
func NewPolicy(opts ...PolicyOption) *Policy {
	p := &Policy{
		implies:   map[string][]string{},
		tools:     map[string]access{},
		prompts:   map[string]access{},
		resources: map[string]access{},
	}
	for _, o := range opts {
		o(p)
	}
	// Close the hierarchy once, so each check is a lookup.
	closed := make(map[string][]string, len(p.implies))
	for broad := range p.implies {
		var all []string
		stack := slices.Clone(p.implies[broad])
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if s == broad || slices.Contains(all, s) {
				continue
			}
			all = append(all, s)
			stack = append(stack, p.implies[s]...)
		}
		closed[broad] = all
	}
	p.implies = closed
	return p
}

// Grants reports whether c holds scope, directly or through a broader scope
// of the hierarchy.
func (p *Policy) Grants(c *Claims, scope string) bool {
	if c == nil {
		return false
	}
	if slices.Contains(c.Scopes, scope) {
		return true
	}
	if p == nil {
		return false
	}
	for _, held := range c.Scopes {
		if slices.Contains(p.implies[held], scope) {
			return true
		}
	}
	return false
}

// grantsAll reports whether c holds every scope of scopes.
func (p *Policy) grantsAll(c *Claims, scopes []string) bool {
	for _, s := range scopes {
		if !p.Grants(c, s) {
			return false
		}
	}
	return true
}

// ServerOptions returns the mcp-go options that hide, in tools/list and
// prompts/list, what a caller's rules do not allow. Pass them to
// server.NewMCPServer.
func (p *Policy) ServerOptions() []server.ServerOption {
	return []server.ServerOption{
		server.WithToolFilter(func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
			c, _ := ClaimsFromContext(ctx)
			op := operationFrom(ctx)
			return slices.DeleteFunc(tools, func(t mcp.Tool) bool {
				if op.method == string(mcp.MethodToolsCall) && op.name == t.Name {
					// The call itself reaches the handler, which answers
					// with a clear tool error instead of "not found".
					return false
				}
				return !p.toolAccess(t.Name).passesRules(c)
			})
		}),
		server.WithPromptFilter(func(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
			c, _ := ClaimsFromContext(ctx)
			return slices.DeleteFunc(prompts, func(pr mcp.Prompt) bool {
				return !p.promptAccess(pr.Name).passesRules(c)
			})
		}),
	}
}

func (p *Policy) toolAccess(name string) access {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.tools[name]
}

func (p *Policy) promptAccess(name string) access {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.prompts[name]
}

func (p *Policy) resourceAccess(uri string) access {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.resources[uri]
}

// AddTool registers tool on s with what a caller needs to use it. The
// handler runs only for callers that hold the scopes and pass the rules;
// others get a tool error (DeniedMessage, or a scope message when the
// transport did not already refuse the call). Behind Middleware with
// WithPolicy a call
// reaches this check even when the list filter hides the tool; served
// without them, mcp-go answers a hidden tool's call with "tool not found".
func (p *Policy) AddTool(s *server.MCPServer, tool mcp.Tool, handler server.ToolHandlerFunc, reqs ...Requirement) {
	a := combine(reqs)
	p.mu.Lock()
	p.tools[tool.Name] = a
	p.mu.Unlock()
	s.AddTool(tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, _ := ClaimsFromContext(ctx)
		if !p.grantsAll(c, a.scopes) {
			return mcp.NewToolResultError(scopeMessage), nil
		}
		if !a.passesRules(c) {
			return mcp.NewToolResultError(DeniedMessage), nil
		}
		return handler(ctx, req)
	})
}

// scopeMessage answers a call that lacks a scope but was not refused at the
// transport (for instance, in a batch, or served without the middleware).
const scopeMessage = "Access denied: the access token lacks a scope this tool requires."

// AddPrompt registers prompt on s with what a caller needs to use it.
func (p *Policy) AddPrompt(s *server.MCPServer, prompt mcp.Prompt, handler server.PromptHandlerFunc, reqs ...Requirement) {
	a := combine(reqs)
	p.mu.Lock()
	p.prompts[prompt.Name] = a
	p.mu.Unlock()
	s.AddPrompt(prompt, func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		c, _ := ClaimsFromContext(ctx)
		if !p.grantsAll(c, a.scopes) || !a.passesRules(c) {
			return nil, errDenied
		}
		return handler(ctx, req)
	})
}

// AddResource registers resource on s with what a caller needs to read it.
// Subscriptions to it (subscriptions/listen) are held to the same.
func (p *Policy) AddResource(s *server.MCPServer, resource mcp.Resource, handler server.ResourceHandlerFunc, reqs ...Requirement) {
	a := combine(reqs)
	p.mu.Lock()
	p.resources[resource.URI] = a
	p.mu.Unlock()
	s.AddResource(resource, func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		c, _ := ClaimsFromContext(ctx)
		if !p.grantsAll(c, a.scopes) || !a.passesRules(c) {
			return nil, errDenied
		}
		return handler(ctx, req)
	})
}

// neededScopes returns the scopes an operation needs beyond the endpoint's.
func (p *Policy) neededScopes(m *message) []string {
	switch m.Method {
	case string(mcp.MethodToolsCall):
		return p.toolAccess(m.paramsName()).scopes
	case string(mcp.MethodPromptsGet):
		return p.promptAccess(m.paramsName()).scopes
	case string(mcp.MethodResourcesRead):
		return p.resourceAccess(m.paramsURI()).scopes
	case string(mcp.MethodSubscriptionsListen):
		var all []string
		for _, uri := range m.resourceURIs() {
			all = append(all, p.resourceAccess(uri).scopes...)
		}
		return cleanScopes(all)
	}
	return nil
}

// listenAllowed reports whether c passes the rules of every resource a
// subscriptions/listen request names.
func (p *Policy) listenAllowed(c *Claims, m *message) bool {
	for _, uri := range m.resourceURIs() {
		if !p.resourceAccess(uri).passesRules(c) {
			return false
		}
	}
	return true
}

// cleanScopes drops empty and repeated scopes and offline_access, which is
// never demanded of a request.
func cleanScopes(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && s != "offline_access" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
