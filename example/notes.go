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

	"github.com/mcp-go-contrib/descope/auth/descope"
)

// The scopes this server knows. Reading needs no scope beyond a valid
// token; writing needs notes:write.
const (
	scopeRead  = "notes:read"
	scopeWrite = "notes:write"
)

// Limits that keep one user from filling the server's memory.
const (
	maxNoteBytes    = 4 << 10
	maxNotesPerUser = 100
)

// Tool errors the caller sees. They are fixed texts.
const (
	msgNotSignedIn = "this tool needs a signed-in caller"
	msgNeedsWrite  = "write_note needs the " + scopeWrite + " scope; sign in again granting it"
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

// newMCPServer builds the MCP server with the notes tools.
func newMCPServer(st *store) *server.MCPServer {
	s := server.NewMCPServer("notes", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("whoami",
		mcp.WithDescription("Shows who you are signed in as: subject, client, scopes, roles, permissions and tenants."),
		mcp.WithReadOnlyHintAnnotation(true),
	), whoami)
	s.AddTool(mcp.NewTool("write_note",
		mcp.WithDescription("Saves a private note. Needs the "+scopeWrite+" scope."),
		mcp.WithString("text", mcp.Required(), mcp.Description("The note's text.")),
		mcp.WithDestructiveHintAnnotation(false),
	), st.writeNote)
	s.AddTool(mcp.NewTool("list_notes",
		mcp.WithDescription("Lists your own notes, oldest first."),
		mcp.WithReadOnlyHintAnnotation(true),
	), st.listNotes)
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
	}
	if id.Tenants == nil {
		id.Tenants = map[string]descope.Tenant{}
	}
	return jsonResult(id)
}

func (s *store) writeNote(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	if msg := checkWriteScope(c); msg != "" {
		return mcp.NewToolResultError(msg), nil
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

// checkWriteScope is the one place write_note's scope rule lives: it returns
// the refusal to show, or "" when the caller may write. (Moving the check to
// the transport, as a 403 insufficient_scope that lets the client step up,
// replaces this function.)
func checkWriteScope(c *descope.Claims) string {
	if !c.HasScope(scopeWrite) {
		return msgNeedsWrite
	}
	return ""
}

func (s *store) listNotes(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError(msgNotSignedIn), nil
	}
	return jsonResult(map[string][]note{"notes": s.list(c.Subject)})
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
