package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-go-contrib/descope/auth"
	"github.com/mcp-go-contrib/descope/auth/descope"
	"github.com/mcp-go-contrib/descope/auth/descope/descopetest"
)

// Protocol eras. mcp-go v1.2.1 and the Go SDK v1.8.0 speak the sessionless
// 2026-07-28 revision by default and fall back to the 2025-11-25 handshake
// (initialize, Mcp-Session-Id); the TypeScript SDK speaks only the latter.
const (
	eraModern = "2026-07-28"
	eraLegacy = "2025-11-25"
)

// redirectURI is registered by every client. Nothing listens there: the
// tests read the code from the authorization endpoint's redirect instead of
// following it.
const redirectURI = "http://127.0.0.1:8085/oauth/callback"

// stepTimeout bounds each client run.
const stepTimeout = 30 * time.Second

// layout is where the protected MCP endpoint lives.
type layout struct {
	name    string
	prefix  string // path of ServerURL
	mcpPath string // Config.MCPPath; empty means the default /mcp
}

func (l layout) String() string { return "layout=" + l.name }

// layouts are the places the MCP endpoint is tested at:
//
//	root         http://127.0.0.1:P/mcp
//	custom-path  http://127.0.0.1:P/api/v1/mcp          (Config.MCPPath)
//	path-prefix  http://127.0.0.1:P/tenant-a/mcp        (ServerURL with a path)
var layouts = []layout{
	{name: "root"},
	{name: "custom-path", mcpPath: "/api/v1/mcp"},
	{name: "path-prefix", prefix: "/tenant-a"},
}

var rootLayout = layouts[0]

// setup says how to build an env.
type setup struct {
	layout         layout
	requiredScopes []string
	leeway         time.Duration // descope.Config.Leeway; 0 keeps the default
	ds             []descopetest.Option
	// mcpServer is the MCP server to protect; nil means whoamiServer().
	// A setup that sets it must not be shared between envs.
	mcpServer *server.MCPServer
	// handlerOptions are passed to auth.Handler (auth.WithPolicy, ...).
	handlerOptions []auth.Option
	// config, when set, adjusts the provider's Config (IssuerOrigins, ...)
	// once the fake Descope is up.
	config func(*descope.Config, *descopetest.Server)
}

// env is a fake Descope and an mcp-go server protected by the library, both
// on loopback, with a journal of every exchange the MCP server answered.
type env struct {
	ds      *descopetest.Server
	p       *descope.Provider
	mcpURL  string // the resource URL, where the MCP endpoint is served
	prmURL  string // where its protected-resource metadata is served
	as      asMetadata
	journal *journal // what the MCP server (and its discovery routes) answered
}

// asMetadata is the part of the fake Descope's discovery document the
// tests check clients against.
type asMetadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
}

// newEnv starts a fake Descope and the protected server. The listener is
// made first so that ServerURL, and with it the resource URL, is known
// before the provider is built.
func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	ds := descopetest.NewServer(s.ds...)
	t.Cleanup(ds.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cfg := descope.Config{
		WellKnownURL:   ds.WellKnownURL(),
		ServerURL:      "http://" + ln.Addr().String() + s.layout.prefix,
		MCPPath:        s.layout.mcpPath,
		RequiredScopes: s.requiredScopes,
		Leeway:         s.leeway,
		Logger:         slog.New(slog.DiscardHandler),
	}
	if s.config != nil {
		s.config(&cfg, ds)
	}
	p, err := descope.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("descope.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })

	e := &env{
		ds:      ds,
		p:       p,
		mcpURL:  p.ProtectedResource().URL,
		prmURL:  p.ProtectedResource().MetadataURL,
		journal: &journal{},
	}
	// As in the Descope console, the MCP Server URL is the resource URL: it
	// is the aud of tokens whose client named no resource.
	ds.SetMCPServerURL(e.mcpURL)
	// What auth.WithProvider sets up, served by httptest: the endpoint
	// guarded by Handler, and 2025-11-25 sessions bound to their callers.
	mcpServer := s.mcpServer
	if mcpServer == nil {
		mcpServer = whoamiServer()
	}
	mcpHTTP := server.NewStreamableHTTPServer(mcpServer, auth.SessionBinding(nil))
	srv := httptest.NewUnstartedServer(e.journal.middleware(auth.Handler(p, mcpHTTP, s.handlerOptions...)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		// Long-lived SSE streams of clients that went away must not hold
		// Close up.
		srv.CloseClientConnections()
		srv.Close()
	})

	// The resource URL must be where the layout says.
	want := "http://" + ln.Addr().String() + s.layout.prefix + cmp.Or(s.layout.mcpPath, "/mcp")
	if e.mcpURL != want {
		t.Fatalf("resource URL = %q, want %q", e.mcpURL, want)
	}

	resp, err := http.Get(ds.WellKnownURL())
	if err != nil {
		t.Fatalf("fake Descope metadata: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&e.as); err != nil {
		t.Fatalf("fake Descope metadata: %v", err)
	}

	// Keys load in the background; wait so that no run meets a 503.
	for deadline := time.Now().Add(10 * time.Second); !p.KeyStatus().Loaded; {
		if time.Now().After(deadline) {
			t.Fatal("the provider did not load the fake Descope's keys")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e
}

// subject is the sub every successful whoami must return.
func (e *env) subject() string { return e.ds.User().Subject }

// whoamiServer is an MCP server with one tool that returns the caller's sub
// as the library hands it to tools.
func whoamiServer() *server.MCPServer {
	s := server.NewMCPServer("e2e-whoami", "1.0.0")
	s.AddTool(whoamiTool(), whoami)
	return s
}

func whoamiTool() mcp.Tool {
	return mcp.NewTool("whoami", mcp.WithDescription("Returns the caller's subject."))
}

// whoami is the whoami tool's handler.
func whoami(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, ok := descope.ClaimsFromContext(ctx)
	if !ok {
		return mcp.NewToolResultError("no authenticated caller"), nil
	}
	return mcp.NewToolResultText(c.Subject), nil
}

// seq orders exchanges across journals (a client's and the server's).
var seq atomic.Int64

// exchange is one HTTP request and its answer, as a client sent it or as the
// MCP server answered it. The Node driver writes the same JSON.
type exchange struct {
	Seq        int64  `json:"-"`
	Method     string `json:"method"`
	URL        string `json:"url"`
	RPC        string `json:"rpc,omitempty"`        // JSON-RPC method of the body
	Name       string `json:"name,omitempty"`       // its params.name (the tool of a tools/call)
	Grant      string `json:"grant,omitempty"`      // grant_type of a token request
	Scope      string `json:"scope,omitempty"`      // scope asked for (authorization or token request)
	Resource   string `json:"resource,omitempty"`   // RFC 8707 resource sent
	Protocol   string `json:"protocol,omitempty"`   // Mcp-Protocol-Version sent
	Session    string `json:"session,omitempty"`    // Mcp-Session-Id sent
	Token      string `json:"token,omitempty"`      // fingerprint of the bearer token sent
	Status     int    `json:"status"`               // 0 when no answer came
	Challenge  string `json:"challenge,omitempty"`  // WWW-Authenticate answered
	Location   string `json:"location,omitempty"`   // Location answered
	NewSession string `json:"newSession,omitempty"` // Mcp-Session-Id answered
	Body       string `json:"body,omitempty"`       // start of an error answer's body
	Err        string `json:"err,omitempty"`        // transport error
}

func (x exchange) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", x.Method, x.URL)
	if x.RPC != "" && x.Name != "" {
		fmt.Fprintf(&b, " [%s %s]", x.RPC, x.Name)
	} else if x.RPC != "" {
		fmt.Fprintf(&b, " [%s]", x.RPC)
	}
	if x.Grant != "" {
		fmt.Fprintf(&b, " [grant_type=%s]", x.Grant)
	}
	if x.Protocol != "" {
		fmt.Fprintf(&b, " (Mcp-Protocol-Version %s)", x.Protocol)
	}
	if x.Session != "" {
		b.WriteString(" (with Mcp-Session-Id)")
	}
	if x.Token != "" {
		fmt.Fprintf(&b, " (bearer %s)", x.Token)
	}
	switch {
	case x.Err != "":
		fmt.Fprintf(&b, " -> error: %s", x.Err)
	case x.Status == 0:
		b.WriteString(" -> no answer yet")
	default:
		fmt.Fprintf(&b, " -> %d", x.Status)
	}
	if x.Challenge != "" {
		fmt.Fprintf(&b, "\n        WWW-Authenticate: %s", x.Challenge)
	}
	if x.Location != "" {
		fmt.Fprintf(&b, "\n        Location: %s", redactQuery(x.Location, "code"))
	}
	if body := strings.TrimSpace(x.Body); body != "" {
		fmt.Fprintf(&b, "\n        body: %s", body)
	}
	return b.String()
}

// redactQuery hides the value of a query parameter, such as an
// authorization code, in failure messages.
func redactQuery(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.Query().Has(name) {
		return raw
	}
	q := u.Query()
	q.Set(name, "…")
	u.RawQuery = q.Encode()
	return u.String()
}

// fingerprint identifies a bearer token in logs without showing it.
func fingerprint(authorization string) string {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return hex.EncodeToString(sum[:4])
}

// journal is a list of exchanges, safe for concurrent use.
type journal struct {
	mu      sync.Mutex
	entries []*exchange
}

func (j *journal) add(x *exchange) {
	x.Seq = seq.Add(1)
	j.mu.Lock()
	j.entries = append(j.entries, x)
	j.mu.Unlock()
}

func (j *journal) update(f func()) {
	j.mu.Lock()
	f()
	j.mu.Unlock()
}

// since returns copies of the exchanges started after mark.
func (j *journal) since(mark int64) []exchange {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []exchange
	for _, x := range j.entries {
		if x.Seq > mark {
			out = append(out, *x)
		}
	}
	return out
}

func (j *journal) all() []exchange { return j.since(0) }

// find returns the first exchange after mark that f accepts.
func (j *journal) find(mark int64, f func(exchange) bool) (exchange, bool) {
	for _, x := range j.since(mark) {
		if f(x) {
			return x, true
		}
	}
	return exchange{}, false
}

// describe reads what a request carries into x and returns the body, which
// the caller puts back.
func describe(x *exchange, r *http.Request) []byte {
	x.Method = r.Method
	x.Protocol = r.Header.Get("Mcp-Protocol-Version")
	x.Session = r.Header.Get("Mcp-Session-Id")
	x.Token = fingerprint(r.Header.Get("Authorization"))
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		x.Scope, x.Resource = q.Get("scope"), q.Get("resource")
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = r.Body.Close()
	var rpc struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &rpc) == nil {
		x.RPC = rpc.Method
		var params struct {
			Name any `json:"name"`
		}
		if json.Unmarshal(rpc.Params, &params) == nil {
			x.Name, _ = params.Name.(string)
		}
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		x.Grant, x.Scope, x.Resource = form.Get("grant_type"), form.Get("scope"), form.Get("resource")
	}
	return body
}

// middleware records every exchange the handler answers. Statuses and
// headers are recorded when the answer starts, so that streams still open
// show up.
func (j *journal) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &exchange{URL: "http://" + r.Host + r.URL.Path}
		if body := describe(x, r); body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		j.add(x)
		rw := &recordingWriter{ResponseWriter: w, j: j, x: x}
		next.ServeHTTP(rw, r)
		rw.WriteHeader(http.StatusOK) // no-op if already written
	})
}

type recordingWriter struct {
	http.ResponseWriter
	j       *journal
	x       *exchange
	written bool
}

func (w *recordingWriter) WriteHeader(status int) {
	if w.written {
		return
	}
	w.written = true
	h := w.Header()
	w.j.update(func() {
		w.x.Status = status
		w.x.Challenge = h.Get("WWW-Authenticate")
		w.x.NewSession = h.Get("Mcp-Session-Id")
		w.x.Location = h.Get("Location")
	})
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.j.update(func() {
		if w.x.Status >= 300 && len(w.x.Body) < 512 {
			w.x.Body += string(b[:min(len(b), 512-len(w.x.Body))])
		}
	})
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Flush() {
	w.WriteHeader(http.StatusOK)
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorder is an http.RoundTripper that records every exchange a Go client
// makes, with the MCP server and with the authorization server.
type recorder struct {
	next http.RoundTripper
	j    *journal
}

// recordingClient returns an HTTP client that records into j.
func recordingClient(j *journal) *http.Client {
	return &http.Client{Transport: &recorder{next: http.DefaultTransport, j: j}}
}

func (rt *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := &exchange{URL: req.URL.String()}
	if body := describe(x, req); body != nil {
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	rt.j.add(x)
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		rt.j.update(func() { x.Err = err.Error() })
		return nil, err
	}
	var peek []byte
	if resp.StatusCode >= 300 && resp.Body != nil {
		// Error answers are small; keep their start for the report
		// and hand the client the whole body.
		peek, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	}
	rt.j.update(func() {
		x.Status = resp.StatusCode
		x.Challenge = resp.Header.Get("WWW-Authenticate")
		x.Location = resp.Header.Get("Location")
		x.NewSession = resp.Header.Get("Mcp-Session-Id")
		x.Body = string(peek)
	})
	return resp, nil
}

// run is one client's run against an env. Its steps fail the test with a
// message that names the client, the step, and what the servers answered.
type run struct {
	t      *testing.T
	client string // client/era/layout, as in the test name
	env    *env
	log    *journal // what the client sent, as it saw it; nil for the Node driver
	extra  func() string
}

func newRun(t *testing.T, client string, e *env) *run {
	return &run{t: t, client: client, env: e, log: &journal{}}
}

// step runs fn and fails the test if it returns an error.
func (r *run) step(name string, fn func() error) {
	r.t.Helper()
	mark := seq.Load()
	if err := fn(); err != nil {
		r.t.Fatal(r.report(name, err, mark))
	}
}

// failf fails the test at a step without running anything.
func (r *run) failf(name, format string, args ...any) {
	r.t.Helper()
	r.t.Fatal(r.report(name, fmt.Errorf(format, args...), 0))
}

// report tells what went wrong and what the servers answered since mark
// (everything, when mark is 0).
func (r *run) report(step string, err error, mark int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "client %s, step %q: %v", r.client, step, err)
	srv := r.env.journal.since(mark)
	if len(srv) == 0 && mark > 0 {
		b.WriteString("\nThe MCP server received nothing during this step. Earlier, it answered:")
		srv = tail(r.env.journal.all(), 8)
	} else {
		b.WriteString("\nThe MCP server answered:")
	}
	writeExchanges(&b, srv)
	if r.log != nil {
		var as []exchange
		for _, x := range r.log.since(mark) {
			if !strings.HasPrefix(x.URL, r.env.ds.URL()) {
				continue // MCP exchanges are listed above
			}
			as = append(as, x)
		}
		b.WriteString("\nThe authorization server (fake Descope) answered the client:")
		writeExchanges(&b, as)
	}
	if r.extra != nil {
		b.WriteString("\n")
		b.WriteString(r.extra())
	}
	return b.String()
}

func writeExchanges(b *strings.Builder, xs []exchange) {
	if len(xs) == 0 {
		b.WriteString("\n    (nothing)")
	}
	for _, x := range xs {
		b.WriteString("\n    ")
		b.WriteString(x.String())
	}
}

func tail[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// authorizeWithoutBrowser does what a browser would at the authorization
// endpoint, which the fake Descope approves at once: it GETs the URL without
// following the redirect and reads code, state and iss from Location. It
// first checks the URL asks for PKCE with S256 and names the resource.
func (r *run) authorizeWithoutBrowser(ctx context.Context, authURL string) (code, state, iss string, err error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", "", "", fmt.Errorf("authorization URL %q: %v", authURL, err)
	}
	q := u.Query()
	switch {
	case !strings.HasPrefix(authURL, r.env.as.AuthorizationEndpoint+"?"):
		return "", "", "", fmt.Errorf("authorization URL %q is not at the advertised endpoint %q", authURL, r.env.as.AuthorizationEndpoint)
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		return "", "", "", fmt.Errorf("authorization URL %q does not use PKCE with S256", authURL)
	case q.Get("resource") != r.env.mcpURL:
		return "", "", "", fmt.Errorf("authorization URL sends resource %q, want the MCP endpoint %q", q.Get("resource"), r.env.mcpURL)
	}
	hc := &http.Client{
		Transport:     &recorder{next: http.DefaultTransport, j: r.log},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       stepTimeout,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", "", "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusFound {
		return "", "", "", fmt.Errorf("authorization endpoint answered %d, want 302: %s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", "", "", fmt.Errorf("authorization endpoint redirect: %v", err)
	}
	lq := loc.Query()
	if e := lq.Get("error"); e != "" {
		return "", "", "", fmt.Errorf("authorization endpoint refused: %s: %s", e, lq.Get("error_description"))
	}
	if !strings.HasPrefix(loc.String(), redirectURI+"?") {
		return "", "", "", fmt.Errorf("authorization endpoint redirected to %q, not the redirect URI", redactQuery(loc.String(), "code"))
	}
	if lq.Get("code") == "" {
		return "", "", "", fmt.Errorf("authorization endpoint redirect carries no code")
	}
	return lq.Get("code"), lq.Get("state"), lq.Get("iss"), nil
}

// stage is one step of the OAuth flow and the MCP calls, as seen in the
// client's exchanges.
type stage struct {
	name  string
	match func(exchange) bool
}

// flowStages are the stages every sign-in must show, in order.
func (e *env) flowStages(era string) []stage {
	connect := stage{"initialize", func(x exchange) bool { return x.isMCP(e, "initialize") }}
	if era == eraModern {
		connect = stage{"server/discover", func(x exchange) bool { return x.isMCP(e, "server/discover") }}
	}
	return []stage{
		{"protected-resource metadata discovery", func(x exchange) bool {
			return x.Method == http.MethodGet && x.URL == e.prmURL && x.Status == http.StatusOK
		}},
		{"authorization-server metadata discovery", func(x exchange) bool {
			// On the fake's own address, or on the host of the issuer the
			// client follows (a custom domain).
			return x.Method == http.MethodGet && x.Status == http.StatusOK &&
				(strings.HasPrefix(x.URL, e.ds.URL()+"/") || strings.HasPrefix(x.URL, originOf(e.as.Issuer)+"/")) &&
				strings.Contains(x.URL, "/.well-known/") && !strings.Contains(x.URL, "jwks")
		}},
		{"dynamic client registration", func(x exchange) bool {
			return x.Method == http.MethodPost && x.URL == e.as.RegistrationEndpoint && x.Status == http.StatusCreated
		}},
		{"PKCE authorization", func(x exchange) bool {
			return x.Method == http.MethodGet && strings.HasPrefix(x.URL, e.as.AuthorizationEndpoint+"?") &&
				x.Status == http.StatusFound && x.Resource == e.mcpURL
		}},
		{"token exchange", func(x exchange) bool {
			return x.Method == http.MethodPost && x.URL == e.as.TokenEndpoint && x.Grant == "authorization_code" &&
				x.Status == http.StatusOK && x.Resource == e.mcpURL
		}},
		connect,
		{"tools/call whoami", func(x exchange) bool { return x.isMCP(e, "tools/call") }},
	}
}

// originOf returns scheme://host of a URL, or "" if it has none.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// isMCP reports whether x is a JSON-RPC call of method to the MCP endpoint
// that succeeded.
func (x exchange) isMCP(e *env, method string) bool {
	return x.Method == http.MethodPost && x.URL == e.mcpURL && x.RPC == method && x.Status == http.StatusOK
}

// checkStages checks that the client's exchanges show every stage of the
// flow, in order.
func (r *run) checkStages(xs []exchange, era string) {
	r.t.Helper()
	i := 0
	for _, st := range r.env.flowStages(era) {
		j := slices.IndexFunc(xs[i:], st.match)
		if j < 0 {
			var b strings.Builder
			writeExchanges(&b, xs)
			r.failf(st.name, "the client's exchanges do not show this stage after the previous ones; the client sent:%s", b.String())
		}
		i += j + 1
	}
}

// checkEra checks, on the server's side, that the tool call ran in the era
// the test name says: 2026-07-28 without a handshake or session, 2025-11-25
// after an initialize that opened a session the call carried.
func (r *run) checkEra(era string) {
	r.t.Helper()
	xs := r.env.journal.all()
	var call, init *exchange
	for i := range xs {
		x := &xs[i]
		if x.Method != http.MethodPost || x.URL != r.env.mcpURL || x.Status != http.StatusOK {
			continue
		}
		switch x.RPC {
		case "tools/call":
			call = x
		case "initialize":
			init = x
		}
	}
	switch {
	case call == nil:
		r.failf("era "+era, "the MCP server answered no tools/call with 200")
	case era == eraModern && (init != nil || call.Session != "" || call.Protocol != eraModern):
		r.failf("era "+era, "tools/call did not run in the sessionless revision: initialize answered=%v, session sent=%v, Mcp-Protocol-Version %q",
			init != nil, call.Session != "", call.Protocol)
	case era == eraLegacy && (init == nil || init.NewSession == "" || call.Session != init.NewSession || call.Protocol != eraLegacy):
		r.failf("era "+era, "tools/call did not run in a 2025-11-25 session: initialize answered=%v, session opened=%v, call carried it=%v, Mcp-Protocol-Version %q",
			init != nil, init != nil && init.NewSession != "", init != nil && call.Session == init.NewSession, call.Protocol)
	}
}

// expectRefused checks that the MCP server answered the bearer token with
// fingerprint fp with exactly this status and WWW-Authenticate challenge.
func (r *run) expectRefused(step, fp string, status int, challenge string) {
	r.t.Helper()
	if _, ok := r.env.journal.find(0, func(x exchange) bool {
		return x.Token == fp && x.Status == status && x.Challenge == challenge
	}); !ok {
		r.t.Fatal(r.report(step, fmt.Errorf("the MCP server never answered the token %s with %d and WWW-Authenticate: %s", fp, status, challenge), 0))
	}
}

// expectAnswer checks that the MCP server answered, since mark, a request
// with exactly this status and WWW-Authenticate challenge.
func (r *run) expectAnswer(step string, mark int64, status int, challenge string) {
	r.t.Helper()
	if _, ok := r.env.journal.find(mark, func(x exchange) bool {
		return x.Status == status && x.Challenge == challenge
	}); !ok {
		r.t.Fatal(r.report(step, fmt.Errorf("the MCP server never answered %d with WWW-Authenticate: %s", status, challenge), mark))
	}
}

// Exact challenges of the library, for the resource of e.
func (e *env) challengeNoToken() string {
	return `Bearer resource_metadata="` + e.prmURL + `"`
}

func (e *env) challengeInvalidToken() string {
	return `Bearer error="invalid_token", error_description="The access token is invalid, expired, or not issued for this server.", resource_metadata="` + e.prmURL + `"`
}
