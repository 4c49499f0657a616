package descopetest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// vaultPost posts body to the vault's path with authorization.
func vaultPost(t *testing.T, s *Server, path, authorization, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	status, _, b := do(t, req)
	return status, decodeObject(t, b)
}

func TestOutboundVault(t *testing.T) {
	s := newServer(t)
	user := s.User().Subject
	fetch := s.Mint(map[string]any{"scope": "outbound.token.fetch"})
	auth := "Bearer " + s.ProjectID() + ":" + fetch
	s.ConnectOutboundApp(user, "calendar", "read", "write")
	s.ConnectOutboundApp("tenant:T1", "jira", "issues")
	userBody := `{"appId":"calendar","userId":"` + user + `","scopes":["read"],"options":{"withRefreshToken":false,"forceRefresh":false}}`

	tests := []struct {
		name, path, auth, body string
		status                 int
		code                   string // errorCode, or "" for a token
	}{
		{"connected, by scopes", outboundUserToken, auth, userBody, 200, ""},
		{"connected, latest", outboundUserTokenLatest, auth, `{"appId":"calendar","userId":"` + user + `","options":{}}`, 200, ""},
		{"tenant-wide", outboundTenantToken, auth, `{"appId":"jira","tenantId":"T1","scopes":["issues"]}`, 200, ""},
		{"scopes not granted", outboundUserToken, auth, `{"appId":"calendar","userId":"` + user + `","scopes":["admin"]}`, 400, codeNotConnected},
		{"another app", outboundUserToken, auth, `{"appId":"slack","userId":"` + user + `","scopes":["read"]}`, 400, codeNotConnected},
		{"another user's token", outboundUserToken, auth, `{"appId":"calendar","userId":"U2other","scopes":["read"]}`, 403, "E011004"},
		{"an unknown field", outboundUserToken, auth, `{"appId":"calendar","userId":"` + user + `","scopes":["read"],"externalIdentifier":"x"}`, 400, "E011002"},
		{"scopes on latest", outboundUserTokenLatest, auth, `{"appId":"calendar","userId":"` + user + `","scopes":["read"]}`, 400, "E011002"},
		{"no project", outboundUserToken, "Bearer " + fetch, userBody, 401, "E011003"},
		{"another project", outboundUserToken, "Bearer Pother:" + fetch, userBody, 401, "E011003"},
		{"a forged token", outboundUserToken, "Bearer " + s.ProjectID() + ":" + fetch + "x", userBody, 401, "E061005"},
		{"no outbound.token.fetch", outboundUserToken, "Bearer " + s.ProjectID() + ":" + s.Mint(map[string]any{"scope": "read"}), userBody, 403, "E011004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := vaultPost(t, s, tt.path, tt.auth, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, resp)
			}
			if tt.code != "" {
				if resp["errorCode"] != tt.code {
					t.Fatalf("errorCode %v, want %s", resp["errorCode"], tt.code)
				}
				return
			}
			tok, _ := resp["token"].(map[string]any)
			if tok["accessToken"] == "" || tok["accessTokenType"] != "Bearer" || tok["accessTokenExpiry"] == nil {
				t.Fatalf("token = %v", tok)
			}
		})
	}

	// The connect link: made for the caller, it connects them and sends
	// them on.
	status, resp := vaultPost(t, s, outboundConnect, auth, `{"appId":"drive","options":{"redirectUrl":"https://mcp.example.com/done","scopes":["files"]}}`)
	link, _ := resp["url"].(string)
	if status != 200 || !strings.HasPrefix(link, s.URL()+outboundConnectLink) {
		t.Fatalf("connect: %d %v", status, resp)
	}
	driveBody := `{"appId":"drive","userId":"` + user + `","scopes":["files"]}`
	if status, _ := vaultPost(t, s, outboundUserToken, auth, driveBody); status != 400 {
		t.Fatalf("connected before the link was followed: %d", status)
	}
	status, header, _ := get(t, link)
	loc, _ := url.Parse(header.Get("Location"))
	if status != http.StatusFound || loc.Host != "mcp.example.com" || loc.Query().Get("app") != "drive" {
		t.Fatalf("link: %d %s", status, header.Get("Location"))
	}
	if status, _ := vaultPost(t, s, outboundUserToken, auth, driveBody); status != 200 {
		t.Fatalf("not connected after the link: %d", status)
	}
	if status, _, _ := get(t, link); status != http.StatusNotFound {
		t.Fatalf("a link works twice: %d", status)
	}

	// Faults.
	before := s.OutboundTokenRequests()
	s.SetOutboundFault(FaultUnavailable)
	if status, resp := vaultPost(t, s, outboundUserToken, auth, userBody); status != 503 {
		t.Fatalf("fault: %d %v", status, resp)
	}
	s.SetOutboundFault(FaultNone)
	s.SetOutboundDelay(100 * time.Millisecond)
	if status, _ := vaultPost(t, s, outboundUserToken, auth, userBody); status != 200 {
		t.Fatalf("delay: %d", status)
	}
	if got := s.OutboundTokenRequests() - before; got != 2 {
		t.Fatalf("%d token requests counted, want 2", got)
	}
	s.DisconnectOutboundApp(user, "calendar")
	s.SetOutboundDelay(0)
	if status, resp := vaultPost(t, s, outboundUserToken, auth, userBody); status != 400 || resp["errorCode"] != codeNotConnected {
		t.Fatalf("after disconnecting: %d %v", status, resp)
	}
}

// TestOutboundToken: a fake third-party API learns whose token it was
// handed, and a token whose connection was removed is nobody's.
func TestOutboundToken(t *testing.T) {
	s := newServer(t)
	user := s.User().Subject
	auth := "Bearer " + s.ProjectID() + ":" + s.Mint(map[string]any{"scope": "outbound.token.fetch"})
	s.ConnectOutboundApp(user, "calendar", "read", "write")
	status, resp := vaultPost(t, s, outboundUserTokenLatest, auth, `{"appId":"calendar","userId":"`+user+`","options":{}}`)
	tok, _ := resp["token"].(map[string]any)
	access, _ := tok["accessToken"].(string)
	if status != 200 || access == "" {
		t.Fatalf("token: %d %v", status, resp)
	}
	sub, app, scopes, ok := s.OutboundToken(access)
	if !ok || sub != user || app != "calendar" || strings.Join(scopes, " ") != "read write" {
		t.Fatalf("OutboundToken = %q %q %v %t", sub, app, scopes, ok)
	}
	if _, _, _, ok := s.OutboundToken(access + "x"); ok {
		t.Fatal("a token the vault never handed out is someone's")
	}
	if _, _, _, ok := s.OutboundToken(""); ok {
		t.Fatal("the empty token is someone's")
	}
	s.DisconnectOutboundApp(user, "calendar")
	if _, _, _, ok := s.OutboundToken(access); ok {
		t.Fatal("a disconnected token is still someone's")
	}
}

// TestPendingConnectsAreBounded: links nobody follows do not pile up.
func TestPendingConnectsAreBounded(t *testing.T) {
	s := newServer(t)
	auth := "Bearer " + s.ProjectID() + ":" + s.Mint(map[string]any{"scope": "outbound.token.fetch"})
	for range maxPendingConnects + 50 {
		if status, resp := vaultPost(t, s, outboundConnect, auth, `{"appId":"drive","options":{}}`); status != 200 {
			t.Fatalf("connect: %d %v", status, resp)
		}
	}
	s.mu.Lock()
	n := len(s.pendingConnects)
	s.mu.Unlock()
	if n != maxPendingConnects {
		t.Fatalf("%d links pending, want %d", n, maxPendingConnects)
	}
}
