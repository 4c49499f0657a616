//go:build linux

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-go-contrib/descope/auth"
)

// pageScript is a web page's own MCP client: plain fetch, no SDK. It
// calls tools/call whoami (protocol 2026-07-28) at the endpoint first
// without a token, then with the token from the page URL's fragment, and
// reports what the page could read: statuses, the challenge, the body, or
// the error fetch threw.
const pageScript = `<!doctype html><title>fetch</title><script>
(async () => {
  const [endpoint, token] = decodeURIComponent(location.hash.slice(1)).split(' ');
  const body = JSON.stringify({jsonrpc: '2.0', id: 1, method: 'tools/call', params: {name: 'whoami', arguments: {},
    _meta: {'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}}}});
  const headers = {'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'whoami'};
  const out = {};
  for (const [name, auth] of [['anonymous', null], ['signed-in', 'Bearer ' + token]]) {
    try {
      const h = Object.assign({}, headers, auth ? {Authorization: auth} : {});
      const r = await fetch(endpoint, {method: 'POST', headers: h, body});
      out[name] = {status: r.status, challenge: r.headers.get('WWW-Authenticate') || '', body: await r.text()};
    } catch (e) {
      out[name] = {error: String(e)};
    }
  }
  window.__result = out;
})();
</script>`

type fetchOutcome struct {
	Status    int    `json:"status"`
	Challenge string `json:"challenge"`
	Body      string `json:"body"`
	Error     string `json:"error"`
}

// TestBrowserFetch: a web page of an allowed origin, in headless Chromium,
// calls the protected endpoint with fetch: its preflight is answered, it
// reads the 401's challenge (to start OAuth) and, with a token, the tool's
// answer. A page of an origin that is not allowed gets nothing: the
// browser refuses the answer.
func TestBrowserFetch(t *testing.T) {
	clientsReady(t)
	chromium := chromiumBinary(t)
	page := func() (*httptest.Server, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = fmt.Fprint(w, pageScript)
		}))
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		return srv, "http://" + ln.Addr().String()
	}
	allowed, allowedOrigin := page()
	other, _ := page()
	e := newEnv(t, setup{requiredScopes: []string{"mcp:tools"}, handlerOptions: []auth.Option{auth.WithAllowedOrigins(allowedOrigin)}})
	token := e.ds.Mint(map[string]any{"aud": []string{e.mcpURL}, "scope": "mcp:tools"})

	run := func(pageServer *httptest.Server, name string) map[string]fetchOutcome {
		var res struct {
			OK     bool                    `json:"ok"`
			Error  string                  `json:"error"`
			Result map[string]fetchOutcome `json:"result"`
		}
		shot := filepath.Join(t.TempDir(), name+".png")
		stderr := runNode(t, clientEnv(t, filepath.Join(t.TempDir(), "page.jsonl")), &res, "page.mjs",
			pageServer.URL+"/#"+e.mcpURL+"%20"+token, mustJSON(map[string]any{"chromium": chromium, "screenshot": shot}))
		if !res.OK {
			t.Fatalf("%s: the page did not finish: %s\nstderr:\n%s", name, res.Error, stderr)
		}
		return res.Result
	}

	got := run(allowed, "allowed")
	anon, signed := got["anonymous"], got["signed-in"]
	if anon.Status != http.StatusUnauthorized || !strings.HasPrefix(anon.Challenge, `Bearer scope="mcp:tools", resource_metadata="`+e.prmURL+`"`) {
		t.Fatalf("allowed origin, no token: %+v; want 401 with a readable challenge", anon)
	}
	if signed.Status != http.StatusOK || !strings.Contains(signed.Body, e.subject()) {
		t.Fatalf("allowed origin, with a token: %+v; want 200 naming %s", signed, e.subject())
	}

	got = run(other, "other")
	for name, o := range got {
		if o.Error == "" || o.Status != 0 {
			t.Fatalf("origin not allowed, %s: %+v; want fetch to fail", name, o)
		}
	}
}
