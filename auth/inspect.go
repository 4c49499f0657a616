package auth

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

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
	ID     rpcID     `json:"id"`
	Method string    `json:"method"`
	Params rawParams `json:"params"`

	name    string // params.name, once decoded
	decoded bool
}

// rpcID is a message's id as it appears in the body, without a copy (the
// body outlives the message). Like encoding/json, and so like mcp-go, the
// last of repeated members wins.
type rpcID struct{ raw []byte }

func (id *rpcID) UnmarshalJSON(b []byte) error {
	id.raw = b
	return nil
}

// rawParams keeps params as they appear in the body, without a copy, and
// notices a repeated params member: encoding/json, and so mcp-go, merges
// repeated objects into one struct, where a raw copy keeps only the last,
// so the two would read different requests from one body.
type rawParams struct {
	raw      []byte
	repeated bool
}

func (p *rawParams) UnmarshalJSON(b []byte) error {
	p.repeated = p.repeated || p.raw != nil
	p.raw = b
	return nil
}

// isNotification classifies a message exactly as mcp-go does: a method and
// no id, where "id": null counts as no id.
func (m *message) isNotification() bool {
	return m.Method != "" && (m.ID.raw == nil || string(m.ID.raw) == "null")
}

// usesTasks reports whether a message asks for a task: a tasks/* method,
// or a tools/call augmented with params.task.
func (m *message) usesTasks() bool {
	if strings.HasPrefix(m.Method, "tasks/") {
		return true
	}
	if m.Method != string(mcp.MethodToolsCall) || !mayNameTask(m.Params.raw) {
		return false
	}
	var p struct {
		Task json.RawMessage `json:"task"`
	}
	_ = json.Unmarshal(m.Params.raw, &p)
	return len(p.Task) > 0 && string(p.Task) != "null"
}

// mayNameTask is a cheap first look: params can hold a "task" member only
// if the word appears in them in any ASCII case, or if they contain an
// escape or a non-ASCII byte (encoding/json matches member names under
// Unicode case folding, where "ſ" is an "s" and the Kelvin sign a "k").
func mayNameTask(params []byte) bool {
	if bytes.IndexByte(params, '\\') >= 0 || !isASCII(params) {
		return true
	}
	// IndexByte is vectorized: look for the k, then at the three before.
	for _, k := range []byte{'k', 'K'} {
		for rest, at := params, 0; ; {
			i := bytes.IndexByte(rest, k)
			if i < 0 {
				break
			}
			if j := at + i; j >= 3 && params[j-3]|0x20 == 't' && params[j-2]|0x20 == 'a' && params[j-1]|0x20 == 's' {
				return true
			}
			rest, at = rest[i+1:], at+i+1
		}
	}
	return false
}

// isASCII reports whether b has no byte of 0x80 or more, looking at eight
// bytes at a time: every tools/call pays it over its params.
func isASCII(b []byte) bool {
	var high uint64
	for len(b) >= 8 {
		high |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		high |= uint64(c)
	}
	return high&0x8080808080808080 == 0
}

// paramsName returns params.name (tools/call, prompts/get).
func (m *message) paramsName() string {
	if !m.decoded {
		m.name, m.decoded = m.readParamsName(), true
	}
	return m.name
}

// The params readers below take the scan's answer when it is sure, and
// decode with encoding/json otherwise; unusable params name nothing.

func (m *message) readParamsName() string {
	if v, ok := scanStringMember(m.Params.raw, "name"); ok {
		return v
	}
	var p struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(m.Params.raw, &p)
	return p.Name
}

// paramsURI returns params.uri (resources/read).
func (m *message) paramsURI() string {
	if v, ok := scanStringMember(m.Params.raw, "uri"); ok {
		return v
	}
	var p struct {
		URI string `json:"uri"`
	}
	_ = json.Unmarshal(m.Params.raw, &p)
	return p.URI
}

// resourceURIs lists the resources a subscriptions/listen request names.
func (m *message) resourceURIs() []string {
	var p struct {
		Notifications struct {
			ResourceSubscriptions []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	}
	_ = json.Unmarshal(m.Params.raw, &p)
	return p.Notifications.ResourceSubscriptions
}

// metaVersion returns params._meta's protocol version exactly as mcp-go
// reads it (detectRequestEra): the last _meta member (its name in any
// case) replaces any before it, a null one clears it, and within it the
// key io.modelcontextprotocol/protocolVersion is matched exactly, as a map
// key; a value that is not a string is no version.
func (m *message) metaVersion() string {
	if len(m.Params.raw) == 0 {
		return "" // what decoding nothing gives
	}
	if meta, found, ok := scanMember(m.Params.raw, "_meta"); ok {
		switch {
		case !found || string(meta) == "null":
			return ""
		default:
			if v, ok := scanExactString(meta, mcp.MetaKeyProtocolVersion); ok {
				return v
			}
		}
	}
	var p struct {
		Meta *mcp.Meta `json:"_meta"`
	}
	if json.Unmarshal(m.Params.raw, &p) != nil {
		return ""
	}
	return p.Meta.ProtocolVersion()
}

// readMessage reads the body of r (at most maxBytes, within wait), puts an
// identical body back for the next handler, and decodes the JSON-RPC message
// in it. A batch, or a message naming params twice, is refused; a body that
// is not a JSON-RPC message yields nil: the MCP server answers it.
//
// The read deadline that bounded the body is left in place once the body
// is read (bodyDeadline), for the caller to replace with the request's own
// or to lift: one update of the deadline fewer per streamed request. After
// a failed read it stays, and the connection is closed.
//
// The message and the body handed on are kept in into, which the caller
// allocates anyway (with the request's requestInfo, see postInfo): two
// allocations fewer per POST.
func readMessage(w http.ResponseWriter, r *http.Request, maxBytes int64, wait time.Duration, into *readBuffers) (m *message, bodyDeadline bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, false, nil
	}
	if r.ContentLength > maxBytes {
		return nil, false, errBodyTooLarge
	}
	deadline := setReadDeadline(w, time.Now().Add(wait))
	body, err := readBody(r.Body, r.ContentLength, maxBytes)
	if err != nil {
		return nil, false, err
	}
	rb := &into.body
	rb.Reset(body)
	r.Body = rb
	lead := scanner{b: body}
	lead.skipSpace()
	if lead.i < len(body) && body[lead.i] == '[' {
		// MCP has had no batches since 2025-06-18 and mcp-go serves none;
		// decoding one would cost memory many times its size.
		return nil, deadline, errBatch
	}
	m = &into.msg
	if !scanMessageInto(body, m) {
		*m = message{}
		if json.Unmarshal(body, m) != nil {
			return nil, deadline, nil
		}
	}
	if m.Params.repeated {
		return nil, deadline, errRepeatedParams
	}
	return m, deadline, nil
}

// firstChunk is the most a body is given before any of it arrived: memory
// grows with the bytes received, never with the length a client announces.
const firstChunk = 64 << 10

// readBody reads all of body, refusing more than maxBytes. announced is the
// Content-Length, or -1.
func readBody(body io.Reader, announced, maxBytes int64) ([]byte, error) {
	size := int64(firstChunk)
	if announced >= 0 && announced < size {
		size = announced + 1 // +1 to see EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > maxBytes {
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, errBodyUnreadable
		}
	}
}

// setReadDeadline sets the connection's read deadline where the writer
// allows it, and reports whether it did. net/http's own writer is asked
// directly, which costs no allocation; wrappers go through
// http.ResponseController.
func setReadDeadline(w http.ResponseWriter, t time.Time) bool {
	if d, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t) == nil
	}
	if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
		return false
	}
	return http.NewResponseController(w).SetReadDeadline(t) == nil
}

// replayBody is the body handed on after the middleware read it.
type replayBody struct{ bytes.Reader }

// readBuffers is where readMessage keeps what it makes for one request.
type readBuffers struct {
	msg  message
	body replayBody
}

func (*replayBody) Close() error { return nil }

// unreadBody reports whether r has a body the middleware did not read.
func unreadBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	_, read := r.Body.(*replayBody)
	return !read
}

var (
	errBatch          = errors.New("JSON-RPC batch")
	errRepeatedParams = errors.New("repeated params member")
	errBodyTooLarge   = errors.New("request body too large")
	errBodyUnreadable = errors.New("request body could not be read")
)

// operation is what the middleware read of a POST's message: its
// JSON-RPC method, as mcp-go decodes it (known: the body was a message),
// and for a tools/call under a Policy the tool's name.
type operation struct {
	method, name string
	known        bool
}

func operationFrom(ctx context.Context) operation {
	if info := requestInfoFrom(ctx); info != nil {
		return info.op
	}
	return operation{}
}

// isModern reports whether a message belongs to protocol version
// 2026-07-28 or later, by the rule mcp-go uses: the header or the body says so.
func isModern(header http.Header, m *message) bool {
	return mcp.IsModernProtocol(header.Get(mcp.HeaderProtocolVersion)) || mcp.IsModernProtocol(m.metaVersion())
}
