package auth

import (
	"context"
	"encoding/json"
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
	templates map[string]templateAccess // by raw URI template
	// templateOrder lists raw templates in the order they were added; an
	// index into it stands for a hidden template in a list cursor.
	templateOrder []string

	// attachMu guards attached, toolRules and promptRules. It is never
	// held with p.mu, and never taken by a request: attach calls into
	// mcp-go, whose filters call back into the Policy under mcp-go's own
	// locks.
	attachMu sync.Mutex
	// attached maps each server the Policy serves to what it installed
	// there (see attach).
	attached map[*server.MCPServer]*attachment
	// toolRules and promptRules record that a tool, or a prompt, with a
	// rule was added: only then can a list filter hide anything.
	toolRules, promptRules bool
}

// attachment is what a Policy installed on one server: the mcp-go Hooks
// its hooks were added to, and whether its list filters are there.
type attachment struct {
	hooks                    *server.Hooks
	toolFilter, promptFilter bool
}

// templateAccess is what a resource template asks of a caller.
type templateAccess struct {
	access
	uri  *mcp.URITemplate
	name string
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

// allows reports whether c may use an item that asks for a: every scope
// (through the hierarchy) and every rule.
func (p *Policy) allows(c *Claims, a access) bool {
	return p.grantsAll(c, a.scopes) && a.passesRules(c)
}

// requires reports whether a asks anything of a caller.
func (a access) requires() bool { return len(a.scopes) > 0 || len(a.rules) > 0 }

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
		templates: map[string]templateAccess{},
		attached:  map[*server.MCPServer]*attachment{},
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

// ServerOptions returns the mcp-go options through which the Policy's
// decisions reach every method that names or lists an item: tools/list,
// prompts/list, resources/list and resources/templates/list hide what a
// caller's rules deny; prompts/get, resources/read, resources/subscribe
// (2025-11-25) and completion/complete refuse it as if it did not exist;
// and results that differ by caller never go out with cacheScope "public".
// Pass them to server.NewMCPServer.
//
// mcp-go's server.WithHooks replaces the server's hooks rather than adding
// to them. The Policy adds its hooks to whatever Hooks the server holds
// when the options are applied, and again, if an app's WithHooks replaced
// them afterwards, when AddTool, AddPrompt, AddResource or
// AddResourceTemplate is called: the app's hooks and the Policy's both
// run, in either order of options. Register items before serving requests.
func (p *Policy) ServerOptions() []server.ServerOption {
	return []server.ServerOption{p.attach}
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

// uriAccess is what reading, subscribing to or completing uri asks: the
// resource's own requirements when uri is a Policy resource or the raw text
// of a Policy template; otherwise those of every Policy template that
// matches uri, all of them, whichever handler mcp-go picks.
//
// Cost: two map lookups, and for a URI that is neither, one match per
// Policy template (uritemplate caches each compiled expression).
func (p *Policy) uriAccess(uri string) access {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if a, ok := p.resources[uri]; ok {
		return a
	}
	if t, ok := p.templates[uri]; ok {
		return t.access
	}
	var all access
	for _, raw := range p.templateOrder { // in order, so that challenges name scopes alike
		t := p.templates[raw]
		if t.uri != nil && t.uri.Template != nil && t.uri.Regexp().MatchString(uri) {
			all.scopes = append(all.scopes, t.scopes...)
			all.rules = append(all.rules, t.rules...)
		}
	}
	all.scopes = cleanScopes(all.scopes)
	return all
}

// templateVisible reports whether resources/templates/list shows the
// template with raw text raw to c.
func (p *Policy) templateVisible(c *Claims, raw string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.templates[raw].passesRules(c)
}

// AddTool registers tool on s with what a caller needs to use it. The
// handler runs only for callers that hold the scopes and pass the rules;
// others get a tool error (DeniedMessage, or a scope message when the
// transport did not already refuse the call). Behind Middleware with
// WithPolicy a call
// reaches this check even when the list filter hides the tool; served
// without them, mcp-go answers a hidden tool's call with "tool not found".
func (p *Policy) AddTool(s *server.MCPServer, tool mcp.Tool, handler server.ToolHandlerFunc, reqs ...Requirement) {
	p.attach(s)
	a := combine(reqs)
	p.mu.Lock()
	p.tools[tool.Name] = a
	p.mu.Unlock()
	if len(a.rules) > 0 {
		p.needFilters(true, false)
	}
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

// AddPrompt registers prompt on s with what a caller needs to use it. A
// caller that fails its rules does not see it in prompts/list, and gets
// mcp-go's "prompt not found" from prompts/get and completion/complete.
func (p *Policy) AddPrompt(s *server.MCPServer, prompt mcp.Prompt, handler server.PromptHandlerFunc, reqs ...Requirement) {
	p.attach(s)
	a := combine(reqs)
	p.mu.Lock()
	p.prompts[prompt.Name] = a
	p.mu.Unlock()
	if len(a.rules) > 0 {
		p.needFilters(false, true)
	}
	s.AddPrompt(prompt, func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		c, _ := ClaimsFromContext(ctx)
		if !p.grantsAll(c, a.scopes) || !a.passesRules(c) {
			return nil, errDenied
		}
		return handler(ctx, req)
	})
}

// AddResource registers resource on s with what a caller needs to read it.
// Every method that names the resource is held to the same: a caller that
// fails its rules does not see it in resources/list, cannot subscribe to
// it (resources/subscribe, subscriptions/listen) or complete its
// arguments, and a read gets an error; a missing scope is a 403 step-up
// challenge at the transport.
func (p *Policy) AddResource(s *server.MCPServer, resource mcp.Resource, handler server.ResourceHandlerFunc, reqs ...Requirement) {
	p.attach(s)
	p.mu.Lock()
	p.resources[resource.URI] = combine(reqs)
	p.mu.Unlock()
	s.AddResource(resource, p.guardRead(handler))
}

// AddResourceTemplate registers template on s with what a caller needs to
// read the resources it names. A URI that matches the template is held to
// its requirements as a resource added with AddResource is, for reads,
// subscriptions and completions; resources/templates/list hides the
// template from a caller that fails its rules.
func (p *Policy) AddResourceTemplate(s *server.MCPServer, template mcp.ResourceTemplate, handler server.ResourceTemplateHandlerFunc, reqs ...Requirement) {
	p.attach(s)
	raw := ""
	if template.URITemplate != nil && template.URITemplate.Template != nil {
		raw = template.URITemplate.Raw()
	}
	p.mu.Lock()
	if _, seen := p.templates[raw]; !seen {
		p.templateOrder = append(p.templateOrder, raw)
	}
	p.templates[raw] = templateAccess{access: combine(reqs), uri: template.URITemplate, name: template.Name}
	p.mu.Unlock()
	s.AddResourceTemplate(template, server.ResourceTemplateHandlerFunc(p.guardRead(server.ResourceHandlerFunc(handler))))
}

// guardRead runs handler only for callers the read's URI allows.
func (p *Policy) guardRead(handler server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		c, _ := ClaimsFromContext(ctx)
		if !p.allows(c, p.uriAccess(req.Params.URI)) {
			return nil, errDenied
		}
		return handler(ctx, req)
	}
}

// neededScopes returns the scopes an operation needs beyond the endpoint's.
// The middleware calls it for every JSON-RPC message of a POST.
func (p *Policy) neededScopes(m *message) []string {
	switch m.Method {
	case string(mcp.MethodToolsCall):
		return p.toolAccess(m.paramsName()).scopes
	case string(mcp.MethodPromptsGet):
		return p.promptAccess(m.paramsName()).scopes
	case string(mcp.MethodResourcesRead):
		return p.uriAccess(m.paramsURI()).scopes
	case string(mcp.MethodResourcesSubscribe):
		if mcp.IsModernProtocol(m.metaVersion()) {
			return nil // removed in 2026-07-28: mcp-go answers "method not found"
		}
		return p.uriAccess(m.paramsURI()).scopes
	case string(mcp.MethodSubscriptionsListen):
		var all []string
		for _, uri := range m.resourceURIs() {
			all = append(all, p.uriAccess(uri).scopes...)
		}
		return cleanScopes(all)
	case string(mcp.MethodCompletionComplete):
		return p.completionAccess(m.Params.raw).scopes
	}
	return nil
}

// completionAccess is what a completion/complete request with params asks:
// that of the prompt, resource or template its ref names. params are
// decoded as mcp-go decodes them, so both read the same ref.
func (p *Policy) completionAccess(params []byte) access {
	var cp mcp.CompleteParams
	if json.Unmarshal(params, &cp) != nil {
		return access{} // mcp-go refuses it as unparsable
	}
	switch ref := cp.Ref.(type) {
	case mcp.PromptReference:
		return p.promptAccess(ref.Name)
	case mcp.ResourceReference:
		return p.uriAccess(ref.URI)
	}
	return access{}
}

// listenAllowed reports whether c passes the rules of every resource a
// subscriptions/listen request names, templates included.
func (p *Policy) listenAllowed(c *Claims, m *message) bool {
	for _, uri := range m.resourceURIs() {
		if !p.uriAccess(uri).passesRules(c) {
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
