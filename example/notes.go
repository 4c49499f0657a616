package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
)

// The scopes this server knows. Reading needs no scope beyond a valid
// token; writing needs notes:write, which implies notes:read (see
// newPolicy).
const (
	scopeRead  = "notes:read"
	scopeWrite = "notes:write"
)

// The Descope authorization the admin and tenant tools ask for: a
// project-wide role, and a permission in the caller's current tenant.
const (
	roleAdmin       = "admin"
	permReportsRead = "reports.read"
	currentTenant   = "" // for descope.RequireTenant*: the token's "dct" claim
)

// Limits that keep one user from filling the server's memory.
const (
	maxNoteBytes    = 4 << 10
	maxNotesPerUser = 100
)

// Tool errors the caller sees. They are fixed texts.
const (
	msgNotSignedIn = "this tool needs a signed-in caller"
)

// note is one stored note.
type note struct {
	Text    string    `json:"text"`
	Created time.Time `json:"created"`
}

// store keeps notes in memory, per user (the token's subject), so that no
// user ever sees another's notes.
type store struct {
	mu    sync.Mutex
	notes map[string][]note
}

func newStore() *store { return &store{notes: make(map[string][]note)} }

// add stores text for subject.
func (s *store) add(subject, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notes[subject]) >= maxNotesPerUser {
		return fmt.Errorf("you already have %d notes, the most this server keeps", maxNotesPerUser)
	}
	s.notes[subject] = append(s.notes[subject], note{Text: text, Created: time.Now().UTC()})
	return nil
}

// list returns a copy of subject's notes, oldest first; never nil.
func (s *store) list(subject string) []note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]note{}, s.notes[subject]...)
}

// count returns how many notes subject has.
func (s *store) count(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.notes[subject])
}

// stats is what notes_stats reports: totals only, never a note's text or
// a user's ID.
type stats struct {
	Users int `json:"users"` // users with at least one note
	Notes int `json:"notes"`
}

func (s *store) stats() stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := stats{}
	for _, notes := range s.notes {
		if len(notes) > 0 {
			st.Users++
			st.Notes += len(notes)
		}
	}
	return st
}

// newPolicy returns the policy the tools are registered with. It is shared
// by the MCP server (which hides and guards tools) and the HTTP middleware
// (which answers a missing scope with 403 insufficient_scope, so that the
// client can ask the user for it). The hierarchy lets a token with
// notes:write pass wherever notes:read is required, for instance in
// DESCOPE_REQUIRED_SCOPES.
func newPolicy() *auth.Policy {
	return auth.NewPolicy(auth.WithScopeHierarchy(map[string][]string{scopeWrite: {scopeRead}}))
}

// newMCPServer builds the MCP server with the notes tools, each registered
// with what a caller needs to use it.
func newMCPServer(st *store, pol *auth.Policy) *server.MCPServer {
	s := server.NewMCPServer("notes", "1.0.0", append(pol.ServerOptions(), server.WithToolCapabilities(false))...)
	// Every tool states all four hints: mcp-go's defaults describe a
	// destructive, open-world tool, and clients badge it so. None reaches
	// anything outside this server's memory (closed-world).
	pol.AddTool(s, mcp.NewTool("whoami",
		mcp.WithDescription("Shows who you are signed in as: subject, client, scopes, roles, permissions and tenants. Open to every signed-in user."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), whoami)
	pol.AddTool(s, mcp.NewTool("write_note",
		mcp.WithDescription("Saves a private note. Needs the "+scopeWrite+" scope; without it the server asks your client to sign in again granting it."),
		mcp.WithString("text", mcp.Required(), mcp.Description("The note's text.")),
		// It adds a note and never changes or removes one; calling it
		// twice stores two notes.
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.writeNote, auth.RequireScopes(scopeWrite))
	pol.AddTool(s, mcp.NewTool("list_notes",
		mcp.WithDescription("Lists your own notes, oldest first. Open to every signed-in user."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.listNotes)
	pol.AddTool(s, mcp.NewTool("notes_stats",
		mcp.WithDescription("Counts the users and notes on this server (no note text). Needs the Descope role \""+roleAdmin+"\" (project-wide); hidden from other users."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.notesStats, descope.RequireRoles(roleAdmin))
	pol.AddTool(s, mcp.NewTool("tenant_report",
		mcp.WithDescription("Reports your current Descope tenant and how many notes you have. Needs the permission \""+permReportsRead+"\" in your current tenant; hidden from other users."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.tenantReport, descope.RequireTenantPermissions(currentTenant, permReportsRead))
	return s
}

// identity is what whoami reports.
type identity struct {
	Sub           string                    `json:"sub"`
	ClientID      string                    `json:"client_id"`
	Scopes        []string                  `json:"scopes"`
	Roles         []string                  `json:"roles"`
	Permissions   []string                  `json:"permissions"`
	Tenants       map[string]descope.Tenant `json:"tenants"`
	CurrentTenant string                    `json:"current_tenant"`
	// DPoPKey is the thumbprint of the key the token is bound to, when the
	// client uses DPoP.
	DPoPKey string `json:"dpop_jkt,omitempty"`
}

func whoami(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	id := identity{
		Sub:           c.Subject,
		ClientID:      c.ClientID,
		Scopes:        orEmpty(c.Scopes),
		Roles:         orEmpty(c.Roles),
		Permissions:   orEmpty(c.Permissions),
		Tenants:       c.Tenants,
		CurrentTenant: c.CurrentTenant,
		DPoPKey:       c.KeyThumbprint,
	}
	if id.Tenants == nil {
		id.Tenants = map[string]descope.Tenant{}
	}
	return jsonResult(id)
}

// writeNote runs only for callers whose token grants notes:write: the
// middleware answers others with 403 insufficient_scope, and the policy
// checks again before calling the handler.
func (s *store) writeNote(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	text, err := req.RequireString("text")
	if err != nil || text == "" {
		return mcp.NewToolResultError("text is required"), nil
	}
	if len(text) > maxNoteBytes || !utf8.ValidString(text) {
		return mcp.NewToolResultError(fmt.Sprintf("text must be valid UTF-8 of at most %d bytes", maxNoteBytes)), nil
	}
	if err := s.add(c.Subject, text); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return mcp.NewToolResultText("saved"), nil
}

func (s *store) listNotes(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	return jsonResult(map[string][]note{"notes": s.list(c.Subject)})
}

// notesStats runs only for callers with the admin role: the policy checks
// it before the handler is called.
func (s *store) notesStats(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, ok := descope.ClaimsFromContext(ctx); !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	return jsonResult(s.stats())
}

// tenantSummary is what tenant_report returns.
type tenantSummary struct {
	Tenant    string `json:"tenant"`
	YourNotes int    `json:"your_notes"`
}

// tenantReport runs only for callers with reports.read in their current
// tenant, so CurrentTenant is never empty here.
func (s *store) tenantReport(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	return jsonResult(tenantSummary{Tenant: c.CurrentTenant, YourNotes: s.count(c.Subject)})
}

func jsonResult(v any) (*mcp.CallToolResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(string(b)), nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
