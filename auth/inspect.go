package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// DefaultMaxBodyBytes caps the POST body the middleware reads to learn which
// operation a request asks for.
const DefaultMaxBodyBytes = 8 << 20

// errDenied answers prompts and resources a caller may not use.
var errDenied = errors.New("access denied")

// message is the part of a JSON-RPC message that decides access. Params
// are kept raw and decoded only for what a decision needs: most requests
// need none of them.
type message struct {
	ID     present         `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`

	name    string // params.name, once decoded
	decoded bool
}

// present records that a JSON member exists (even as null), without
// keeping its value.
type present bool

func (p *present) UnmarshalJSON([]byte) error {
	*p = true
	return nil
}

func (m *message) isNotification() bool { return m.Method != "" && !bool(m.ID) }

// paramsName returns params.name (tools/call, prompts/get).
func (m *message) paramsName() string {
	if !m.decoded {
		var p struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(m.Params, &p) // unusable params name nothing
		m.name, m.decoded = p.Name, true
	}
	return m.name
}

// paramsURI returns params.uri (resources/read).
func (m *message) paramsURI() string {
	var p struct {
		URI string `json:"uri"`
	}
	_ = json.Unmarshal(m.Params, &p)
	return p.URI
}

// resourceURIs lists the resources a subscriptions/listen request names.
func (m *message) resourceURIs() []string {
	var p struct {
		Notifications struct {
			ResourceSubscriptions []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	}
	_ = json.Unmarshal(m.Params, &p)
	return p.Notifications.ResourceSubscriptions
}

// metaVersion returns params._meta's protocol version.
func (m *message) metaVersion() string {
	var p struct {
		Meta struct {
			ProtocolVersion string `json:"io.modelcontextprotocol/protocolVersion"`
		} `json:"_meta"`
	}
	_ = json.Unmarshal(m.Params, &p)
	return p.Meta.ProtocolVersion
}

// readMessages reads the body of r (at most maxBytes), puts an identical
// body back for the next handler, and decodes the JSON-RPC message or batch
// in it. A body that is not JSON-RPC yields no messages: the MCP server
// answers it.
func readMessages(r *http.Request, maxBytes int64) ([]message, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > maxBytes {
		return nil, errBodyTooLarge
	}
	var body []byte
	var err error
	if r.ContentLength > 0 {
		// The usual case: one allocation of the announced size.
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	}
	if err != nil {
		return nil, errBodyUnreadable
	}
	if int64(len(body)) > maxBytes {
		return nil, errBodyTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []message
		if json.Unmarshal(body, &batch) != nil {
			return nil, nil
		}
		return batch, nil
	}
	var m message
	if json.Unmarshal(body, &m) != nil {
		return nil, nil
	}
	return []message{m}, nil
}

var (
	errBodyTooLarge   = errors.New("request body too large")
	errBodyUnreadable = errors.New("request body could not be read")
)

// operation is the JSON-RPC method and name of a single-message request.
type operation struct{ method, name string }

type operationKey struct{}

func withOperation(ctx context.Context, m *message) context.Context {
	return context.WithValue(ctx, operationKey{}, operation{method: m.Method, name: m.paramsName()})
}

func operationFrom(ctx context.Context) operation {
	op, _ := ctx.Value(operationKey{}).(operation)
	return op
}

// isModern reports whether a message belongs to protocol version
// 2026-07-28 or later, by the rule mcp-go uses: the header or the body says so.
func isModern(header http.Header, m *message) bool {
	return mcp.IsModernProtocol(header.Get(mcp.HeaderProtocolVersion)) || mcp.IsModernProtocol(m.metaVersion())
}
