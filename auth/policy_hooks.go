package auth

// This file carries a Policy's decisions into mcp-go: the filters, hooks
// and resource middleware through which every method that names or lists
// an item honours the same decision.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// attach installs the Policy on s: once, the resource middleware, and the
// tool and prompt filters once a tool or prompt with a rule exists (see
// needFilters); and its hooks, on the Hooks s holds now, unless they are
// already there. It is a server.ServerOption, and every Add* method calls
// it again, so that hooks an app's server.WithHooks replaced come back.
func (p *Policy) attach(s *server.MCPServer) {
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	at, seen := p.attached[s]
	if !seen {
		at = &attachment{}
		p.attached[s] = at
		server.WithResourceHandlerMiddleware(p.guardRead)(s)
	}
	p.installFilters(s, at)
	hooks := s.GetHooks()
	if seen && hooks == at.hooks && hooks != nil {
		return
	}
	if hooks == nil {
		hooks = &server.Hooks{}
		server.WithHooks(hooks)(s)
	}
	p.addHooks(s, hooks)
	at.hooks = hooks
}

// needFilters records that a tool (or a prompt) with a rule exists, and
// installs the list filter it needs on every server the Policy serves.
// Until then no filter is installed: only a rule hides an item, and mcp-go
// runs tool filters, on a copy of the tool, on every tools/call
// (TestRuleFreePolicyCostsToolCallsNothing). Rules apply by name on every
// server the Policy serves, hence every server.
func (p *Policy) needFilters(tools, prompts bool) {
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	p.toolRules = p.toolRules || tools
	p.promptRules = p.promptRules || prompts
	for s, at := range p.attached {
		p.installFilters(s, at)
	}
}

// installFilters adds to s the list filters the Policy needs and s lacks.
// attachMu must be held.
func (p *Policy) installFilters(s *server.MCPServer, at *attachment) {
	if p.toolRules && !at.toolFilter {
		server.WithToolFilter(p.filterTools)(s)
		at.toolFilter = true
	}
	if p.promptRules && !at.promptFilter {
		server.WithPromptFilter(p.filterPrompts)(s)
		at.promptFilter = true
	}
}

// addHooks adds the Policy's hooks for s to h. Each hook acts only on s's
// requests, so that Hooks an app shares between servers carry each
// server's own Policy.
func (p *Policy) addHooks(s *server.MCPServer, h *server.Hooks) {
	mine := func(ctx context.Context) bool { return server.ServerFromContext(ctx) == s }
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		raw, ok := message.(json.RawMessage)
		if !ok || !mine(ctx) {
			return nil
		}
		return p.refuseHidden(ctx, s, raw)
	})
	h.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, r *mcp.ListToolsResult) {
		if mine(ctx) {
			keepPrivate(ctx, &r.CacheableResult)
		}
	})
	h.AddAfterListPrompts(func(ctx context.Context, _ any, _ *mcp.ListPromptsRequest, r *mcp.ListPromptsResult) {
		if mine(ctx) {
			keepPrivate(ctx, &r.CacheableResult)
		}
	})
	h.AddAfterListResources(func(ctx context.Context, _ any, req *mcp.ListResourcesRequest, r *mcp.ListResourcesResult) {
		if mine(ctx) {
			p.filterResources(ctx, s, req, r)
			keepPrivate(ctx, &r.CacheableResult)
		}
	})
	h.AddBeforeListResourceTemplates(func(ctx context.Context, _ any, req *mcp.ListResourceTemplatesRequest) {
		if mine(ctx) {
			req.Params.Cursor = p.templateCursor(req.Params.Cursor)
		}
	})
	h.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, r *mcp.ListResourceTemplatesResult) {
		if mine(ctx) {
			p.filterTemplates(ctx, r)
			keepPrivate(ctx, &r.CacheableResult)
		}
	})
	h.AddAfterReadResource(func(ctx context.Context, _ any, req *mcp.ReadResourceRequest, r *mcp.ReadResourceResult) {
		if mine(ctx) && p.uriAccess(req.Params.URI).requires() {
			keepPrivate(ctx, &r.CacheableResult)
		}
	})
}

// filterTools hides from tools/list the tools whose rules the caller fails.
func (p *Policy) filterTools(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
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
}

// filterPrompts hides prompts from prompts/list and, since mcp-go runs
// prompt filters at get time too, answers prompts/get for a hidden prompt
// with mcp-go's own "prompt not found".
func (p *Policy) filterPrompts(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
	c, _ := ClaimsFromContext(ctx)
	return slices.DeleteFunc(prompts, func(pr mcp.Prompt) bool {
		return !p.promptAccess(pr.Name).passesRules(c)
	})
}

// refuseHidden runs before mcp-go hands a request to its handler or to any
// other hook. It refuses a completion/complete or a 2025-11-25
// resources/subscribe that names what the caller may not use, so that the
// app's completion provider does not run and its subscribe hooks never
// record the subscription. mcp-go sends the returned error as JSON-RPC
// error -32600 with the error's text, which is mcp-go's own text for an
// unknown prompt or resource. Completions for prompts the server does not
// have get the same answer, so a hidden prompt looks exactly like a
// missing one.
//
// Requests are decoded as mcp-go decodes them; one it cannot decode is
// left to mcp-go, which refuses it.
//
// Cost: behind the middleware, which read the method of the same body
// already, a comparison; elsewhere two substring searches over the body
// (BenchmarkPolicyHooks). Only a body that may name one of the two
// methods is decoded.
func (p *Policy) refuseHidden(ctx context.Context, s *server.MCPServer, raw json.RawMessage) error {
	if op := operationFrom(ctx); op.known {
		if op.method != string(mcp.MethodCompletionComplete) && op.method != string(mcp.MethodResourcesSubscribe) {
			return nil
		}
	} else if !mayNameMethod(raw, mcp.MethodCompletionComplete, mcp.MethodResourcesSubscribe) {
		return nil
	}
	var base struct {
		Method mcp.MCPMethod `json:"method"`
	}
	if json.Unmarshal(raw, &base) != nil {
		return nil
	}
	switch base.Method {
	case mcp.MethodCompletionComplete:
		var req mcp.CompleteRequest
		if json.Unmarshal(raw, &req) != nil {
			return nil
		}
		c, _ := ClaimsFromContext(ctx)
		switch ref := req.Params.Ref.(type) {
		case mcp.PromptReference:
			if _, exists := s.ListPrompts()[ref.Name]; !exists || !p.allows(c, p.promptAccess(ref.Name)) {
				return fmt.Errorf("prompt '%s' not found: %w", ref.Name, server.ErrPromptNotFound)
			}
		case mcp.ResourceReference:
			if !p.allows(c, p.uriAccess(ref.URI)) {
				return resourceNotFound(ref.URI)
			}
		}
	case mcp.MethodResourcesSubscribe:
		var req mcp.SubscribeRequest
		if json.Unmarshal(raw, &req) != nil || isModernMessage(raw) {
			return nil // 2026-07-28 removed it: mcp-go answers "method not found"
		}
		c, _ := ClaimsFromContext(ctx)
		if !p.allows(c, p.uriAccess(req.Params.URI)) {
			return resourceNotFound(req.Params.URI)
		}
	}
	return nil
}

// mayNameMethod is a cheap first look: a JSON message can have one of
// methods as its method only if the name appears in it verbatim, or if it
// contains an escape (encoding/json decodes "\u0063ompletion/complete").
func mayNameMethod(raw []byte, methods ...mcp.MCPMethod) bool {
	if bytes.IndexByte(raw, '\\') >= 0 {
		return true
	}
	for _, m := range methods {
		if bytes.Contains(raw, []byte(m)) {
			return true
		}
	}
	return false
}

// resourceNotFound is mcp-go's error for a URI no resource or template
// serves.
func resourceNotFound(uri string) error {
	return fmt.Errorf("handler not found for resource URI '%s': %w", uri, server.ErrResourceNotFound)
}

// isModernMessage classifies a message's protocol era as mcp-go's
// HandleMessage does: by the version in params._meta alone.
func isModernMessage(raw json.RawMessage) bool {
	var w struct {
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	_ = json.Unmarshal(raw, &w)
	return mcp.IsModernProtocol(w.Params.Meta.ProtocolVersion())
}

// keepPrivate marks a 2026-07-28 result as one a cache must not share
// across authorization contexts, whatever hints the server was given
// (mcp-go only fills in hints a result does not carry yet). mcp-go does not
// expose the server's TTL, so the result gets its default, 0: revalidate.
// 2025-11-25 results carry no hints and are left alone.
func keepPrivate(ctx context.Context, r *mcp.CacheableResult) {
	if !server.IsModernRequest(ctx) {
		return
	}
	ttl, _ := r.TTL()
	r.SetCacheHints(ttl, mcp.CacheScopePrivate)
}

// filterResources removes from a resources/list page what the caller's
// rules deny. mcp-go cuts pages before this hook sees them and names the
// next page after the page's last resource; when there is a next page, the
// page is built again from the resources the caller may see, so that it is
// full and its cursor names a resource the caller can see.
func (p *Policy) filterResources(ctx context.Context, s *server.MCPServer, req *mcp.ListResourcesRequest, r *mcp.ListResourcesResult) {
	c, _ := ClaimsFromContext(ctx)
	hidden := func(res mcp.Resource) bool { return !p.uriAccess(res.URI).passesRules(c) }
	if r.NextCursor == "" {
		// The last page (or the only one): nothing follows it.
		r.Resources = slices.DeleteFunc(r.Resources, hidden)
		return
	}
	// mcp-go sets a cursor only on a full page: its length is the limit.
	limit := len(r.Resources)
	all := map[string]mcp.Resource{}
	for uri, res := range s.ListResources() {
		all[uri] = res.Resource
	}
	if sr, ok := server.ClientSessionFromContext(ctx).(server.SessionWithResources); ok {
		for uri, res := range sr.GetSessionResources() {
			all[uri] = res.Resource
		}
	}
	// mcp-go's order and cursor rules (listByPagination), over what the
	// caller may see.
	visible := slices.DeleteFunc(slices.SortedFunc(maps.Values(all), func(a, b mcp.Resource) int {
		return cmp.Compare(a.Name, b.Name)
	}), hidden)
	start := 0
	if req.Params.Cursor != "" {
		after, _ := base64.StdEncoding.DecodeString(string(req.Params.Cursor)) // mcp-go accepted it
		start = sort.Search(len(visible), func(i int) bool { return visible[i].Name > string(after) })
	}
	page := visible[start:min(start+limit, len(visible))]
	r.Resources, r.NextCursor = page, ""
	if len(page) == limit {
		r.NextCursor = mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(page[len(page)-1].Name)))
	}
}

// hiddenCursor starts a cursor that stands for a hidden template: "~" and
// the template's index in Policy.templateOrder. It is never base64 ("~" is
// not in the alphabet), so it cannot be mistaken for one of mcp-go's.
const hiddenCursor = "~"

// filterTemplates removes from a resources/templates/list page what the
// caller's rules deny. mcp-go offers no way to list templates, so a page
// cannot be rebuilt: when the next page would be named after a hidden
// template, the cursor names the template by its index instead, and
// templateCursor turns it back.
func (p *Policy) filterTemplates(ctx context.Context, r *mcp.ListResourceTemplatesResult) {
	c, _ := ClaimsFromContext(ctx)
	raw := func(t mcp.ResourceTemplate) string {
		if t.URITemplate == nil || t.URITemplate.Template == nil {
			return ""
		}
		return t.URITemplate.Raw()
	}
	hidden := func(t mcp.ResourceTemplate) bool { return !p.templateVisible(c, raw(t)) }
	if n := len(r.ResourceTemplates); r.NextCursor != "" && n > 0 && hidden(r.ResourceTemplates[n-1]) {
		p.mu.RLock()
		i := slices.Index(p.templateOrder, raw(r.ResourceTemplates[n-1]))
		p.mu.RUnlock()
		r.NextCursor = mcp.Cursor(hiddenCursor + strconv.Itoa(i))
	}
	r.ResourceTemplates = slices.DeleteFunc(r.ResourceTemplates, hidden)
}

// templateCursor turns a cursor filterTemplates made back into mcp-go's.
func (p *Policy) templateCursor(cursor mcp.Cursor) mcp.Cursor {
	index, ok := strings.CutPrefix(string(cursor), hiddenCursor)
	if !ok {
		return cursor
	}
	i, err := strconv.Atoi(index)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err != nil || i < 0 || i >= len(p.templateOrder) {
		return cursor // mcp-go refuses it as it refuses any bad cursor
	}
	return mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(p.templates[p.templateOrder[i]].name)))
}
