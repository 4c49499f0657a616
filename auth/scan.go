package auth

// scan.go reads the few members of a JSON-RPC message that decisions need
// (id, method, params and a handful of params members) in one pass over
// the bytes, without encoding/json's validation and reflection.
//
// It is a fast path, not a second parser: whenever a body is not plainly
// shaped (an escape or a non-ASCII byte in a member name, a string value
// with an escape, a member of the wrong type, anything malformed) it gives
// up and the caller decodes with encoding/json as before. For every body
// encoding/json accepts, what it does return is what encoding/json would
// decode, member names matched without regard to case and the last of
// repeated members winning (FuzzScanMessage checks both against
// encoding/json). Bodies that encoding/json refuses mcp-go refuses too, so
// what the scan makes of them decides nothing.

import "github.com/mark3labs/mcp-go/mcp"

// scanner walks one JSON object. All positions are byte offsets into b.
type scanner struct {
	b       []byte
	i       int
	members int // members read so far
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// open starts an object: it must be the first non-space byte.
func (s *scanner) open() bool {
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	return true
}

// next returns the next member's name (raw, without quotes) and value
// (raw), or done at the closing brace. ok is false when the object is not
// plainly shaped: the caller must fall back.
func (s *scanner) next() (name, value []byte, done, ok bool) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return nil, nil, false, false
	}
	switch {
	case s.b[s.i] == '}':
		s.i++
		return nil, nil, true, true
	case s.members > 0 && s.b[s.i] == ',':
		s.i++
		s.skipSpace()
	case s.members > 0:
		return nil, nil, false, false
	}
	s.members++
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, nil, false, false
	}
	start := s.i + 1
	j := start
	for j < len(s.b) && s.b[j] != '"' {
		if c := s.b[j]; c == '\\' || c < 0x20 || c >= 0x80 {
			// Escapes and non-ASCII names fold in ways only
			// encoding/json should judge.
			return nil, nil, false, false
		}
		j++
	}
	if j >= len(s.b) {
		return nil, nil, false, false
	}
	name = s.b[start:j]
	s.i = j + 1
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, nil, false, false
	}
	s.i++
	s.skipSpace()
	vstart := s.i
	if !s.skipValue() {
		return nil, nil, false, false
	}
	value = s.b[vstart:s.i]
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] != ',' && s.b[s.i] != '}' {
		return nil, nil, false, false
	}
	return name, value, false, true
}

// end reports whether only white space follows the object.
func (s *scanner) end() bool {
	s.skipSpace()
	return s.i == len(s.b)
}

// skipValue moves past one value. It finds the end of any valid JSON value;
// on invalid JSON it may stop anywhere, or report false.
func (s *scanner) skipValue() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default:
		// A number or a literal runs to the next delimiter.
		start := s.i
		for s.i < len(s.b) {
			c := s.b[s.i]
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				break
			}
			s.i++
		}
		return s.i > start
	}
}

// skipString moves past a string starting at s.i.
func (s *scanner) skipString() bool {
	for j := s.i + 1; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return true
		}
	}
	return false
}

// foldEqual reports whether name, plain ASCII, equals key (lower case)
// without regard to ASCII case.
func foldEqual(name []byte, key string) bool {
	if len(name) != len(key) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

// plainString returns the content of a JSON string value with no escapes
// and only printable ASCII, which is then exactly what encoding/json
// decodes; ok is false for anything else.
func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(v[1 : len(v)-1]), true
}

// knownMethods are the methods a request commonly names, so that reading
// one costs no allocation. Their names need no escaping.
var knownMethods = func() map[string]string {
	m := map[string]string{}
	for _, method := range []mcp.MCPMethod{
		mcp.MethodInitialize, mcp.MethodPing, mcp.MethodResourcesList, mcp.MethodResourcesTemplatesList,
		mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe,
		mcp.MethodPromptsList, mcp.MethodPromptsGet, mcp.MethodToolsList, mcp.MethodToolsCall,
		mcp.MethodSetLogLevel, mcp.MethodNotificationInitialized, mcp.MethodNotificationCancelled,
		mcp.MethodNotificationProgress, mcp.MethodCompletionComplete, mcp.MethodServerDiscover,
		mcp.MethodSubscriptionsListen,
	} {
		m[string(method)] = string(method)
	}
	return m
}()

// scanMessageInto reads id, method and params of a body into m, which must
// be empty, the way readMessage's encoding/json decode would, or reports
// false when it cannot be sure; m may then hold part of the message.
func scanMessageInto(body []byte, m *message) bool {
	s := scanner{b: body}
	if !s.open() {
		return false
	}
	for {
		name, value, done, ok := s.next()
		if !ok {
			return false
		}
		if done {
			break
		}
		switch {
		case foldEqual(name, "id"):
			m.ID.raw = value
		case foldEqual(name, "method"):
			if len(value) >= 2 {
				if known, ok := knownMethods[string(value[1:len(value)-1])]; ok && value[0] == '"' && value[len(value)-1] == '"' {
					m.Method = known // no copy of the common methods
					continue
				}
			}
			method, ok := plainString(value)
			if !ok {
				return false
			}
			m.Method = method
		case foldEqual(name, "params"):
			m.Params.repeated = m.Params.repeated || m.Params.raw != nil
			m.Params.raw = value
		}
	}
	return s.end()
}

// scanMember returns the raw value of the last member of the object obj
// whose name is key (lower case ASCII) in any case, with found false when
// there is none; ok is false when the scan cannot be sure.
func scanMember(obj []byte, key string) (value []byte, found, ok bool) {
	s := scanner{b: obj}
	if !s.open() {
		return nil, false, false
	}
	for {
		name, v, done, ok := s.next()
		if !ok {
			return nil, false, false
		}
		if done {
			return value, found, s.end()
		}
		if foldEqual(name, key) {
			value, found = v, true
		}
	}
}

// scanStringMember is scanMember for a member that must be a string: a
// missing member is "", anything but a plain string is not ok.
func scanStringMember(obj []byte, key string) (string, bool) {
	v, found, ok := scanMember(obj, key)
	if !ok {
		return "", false
	}
	if !found {
		return "", true
	}
	return plainString(v)
}

// scanExactString reads the member key, matched exactly (as a map key is),
// of the object obj, as mcp-go reads a _meta value: the last one wins, a
// missing or null member is "", a plain string is itself; anything else is
// not ok.
func scanExactString(obj []byte, key string) (string, bool) {
	s := scanner{b: obj}
	if !s.open() {
		return "", false
	}
	var value []byte
	for {
		name, v, done, ok := s.next()
		if !ok {
			return "", false
		}
		if done {
			break
		}
		if string(name) == key {
			value = v
		}
	}
	if !s.end() {
		return "", false
	}
	if value == nil || string(value) == "null" {
		return "", true
	}
	return plainString(value)
}
