package descopetest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// signIn registers through wellKnown, authorizes and redeems the code, and
// returns the access token's claims.
func signIn(t *testing.T, s *Server, wellKnown string) map[string]any {
	t.Helper()
	c := register(t, wellKnown, "", "notes:read")
	verifier, challenge := pkce()
	code := c.getCode(t, nil, challenge)
	status, resp := c.redeem(t, code, verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("redeem: status %d, %v", status, resp)
	}
	_, claims := parse(t, s, resp["access_token"].(string))
	return claims
}

func TestIssuerDrift(t *testing.T) {
	s := newServer(t, WithIssuerDrift())
	if want := s.URL() + "/v1/apps/agentic/" + s.ProjectID() + "/" + s.MCPServerID() + "/.well-known/openid-configuration"; s.WellKnownURL() != want {
		t.Fatalf("WellKnownURL = %q, want the agentic one %q", s.WellKnownURL(), want)
	}
	if s.Issuer() != s.ProjectIssuer() {
		t.Errorf("Issuer = %q, want the project-level issuer", s.Issuer())
	}
	for _, u := range []string{
		s.WellKnownURL(),
		s.URL() + "/.well-known/oauth-authorization-server/v1/apps/agentic/" + s.ProjectID() + "/" + s.MCPServerID(),
		s.ProjectIssuer() + "/.well-known/openid-configuration",
	} {
		_, doc := getJSON(t, u)
		if doc["issuer"] != s.ProjectIssuer() {
			t.Errorf("%s declares issuer %v, want %s", u, doc["issuer"], s.ProjectIssuer())
		}
	}
	_, agentic := getJSON(t, s.WellKnownURL())
	if want := s.URL() + "/oauth2/v1/apps/agentic/" + s.ProjectID() + "/" + s.MCPServerID() + "/token"; agentic["token_endpoint"] != want {
		t.Errorf("the agentic document's token endpoint = %v, want the MCP Server's %s", agentic["token_endpoint"], want)
	}
	if iss := signIn(t, s, s.WellKnownURL())["iss"]; iss != s.ProjectIssuer() {
		t.Errorf("token iss = %v, want %s", iss, s.ProjectIssuer())
	}
	if _, claims := unverified(t, s.Mint(nil)); claims["iss"] != s.ProjectIssuer() {
		t.Errorf("Mint iss = %v", claims["iss"])
	}
}

func TestTenantIssuer(t *testing.T) {
	s := newServer(t, WithTenantIssuer("T2acme"))
	want := s.URL() + "/v1/apps/" + s.ProjectID() + "/T2acme"
	if s.TenantIssuer() != want || s.Issuer() != want {
		t.Fatalf("TenantIssuer = %q, Issuer = %q, want %q", s.TenantIssuer(), s.Issuer(), want)
	}
	if _, doc := getJSON(t, s.WellKnownURL()); doc["issuer"] != s.AgenticIssuer() {
		t.Errorf("discovery declares %v; a tenant issuer has no document of its own", doc["issuer"])
	}
	claims := signIn(t, s, s.WellKnownURL())
	if claims["iss"] != want || claims["dct"] != "T2acme" {
		t.Errorf("token iss = %v, dct = %v", claims["iss"], claims["dct"])
	}
	// A user with a current tenant keeps it.
	s.SetUser(User{Subject: "U2x", CurrentTenant: "T2other"})
	if _, c := unverified(t, s.Mint(nil)); c["iss"] != want || c["dct"] != "T2other" {
		t.Errorf("Mint iss = %v, dct = %v", c["iss"], c["dct"])
	}
	if plain := newServer(t); plain.TenantIssuer() != "" {
		t.Errorf("TenantIssuer without the option = %q", plain.TenantIssuer())
	}
}

func TestCustomDomain(t *testing.T) {
	s := newServer(t, WithCustomDomain())
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL(), "http://"))
	custom := "http://localhost:" + port
	if s.CustomDomainURL() != custom {
		t.Fatalf("CustomDomainURL = %q, want %q", s.CustomDomainURL(), custom)
	}
	if !strings.HasPrefix(s.WellKnownURL(), s.URL()+"/") {
		t.Errorf("WellKnownURL %q is not on the server's own address", s.WellKnownURL())
	}
	agentic := custom + "/v1/apps/agentic/" + s.ProjectID() + "/" + s.MCPServerID()
	if s.AgenticIssuer() != agentic || s.Issuer() != agentic || s.ProjectIssuer() != custom+"/v1/apps/"+s.ProjectID() {
		t.Errorf("issuers = %q, %q", s.AgenticIssuer(), s.ProjectIssuer())
	}
	for _, u := range []string{s.WellKnownURL(), strings.Replace(s.WellKnownURL(), s.URL(), custom, 1)} {
		_, doc := getJSON(t, u)
		if doc["issuer"] != agentic {
			t.Errorf("%s declares %v, want %s", u, doc["issuer"], agentic)
		}
		for _, k := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint", "jwks_uri"} {
			if v, _ := doc[k].(string); !strings.HasPrefix(v, custom+"/") {
				t.Errorf("%s: %s = %q, not on the custom domain", u, k, v)
			}
		}
	}
	if iss := signIn(t, s, s.WellKnownURL())["iss"]; iss != agentic {
		t.Errorf("token iss = %v, want %s", iss, agentic)
	}
	if plain := newServer(t); plain.CustomDomainURL() != "" {
		t.Errorf("CustomDomainURL without the option = %q", plain.CustomDomainURL())
	}
}

func TestAuthorizationResponseIssuer(t *testing.T) {
	s := newServer(t, WithAuthorizationResponseIssuer(), WithIssuerDrift())
	for _, tc := range []struct {
		name, wellKnown, iss string
	}{
		// Under drift the agentic document declares the project-level
		// issuer, so that is the iss of its authorization endpoint too.
		{"agentic endpoint", s.WellKnownURL(), s.ProjectIssuer()},
		{"project-level endpoint", s.ProjectIssuer() + "/.well-known/openid-configuration", s.ProjectIssuer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, doc := getJSON(t, tc.wellKnown)
			if doc["authorization_response_iss_parameter_supported"] != true {
				t.Fatalf("metadata does not advertise the iss parameter: %v", doc)
			}
			c := register(t, tc.wellKnown, "", "")
			_, challenge := pkce()
			for _, params := range []map[string]string{nil, {"code_challenge_method": "plain"}} {
				status, header, _ := get(t, c.authorizeURL(params, challenge))
				loc, _ := url.Parse(header.Get("Location"))
				if status != http.StatusFound || loc.Query().Get("iss") != tc.iss {
					t.Errorf("params %v: status %d, Location %s; want iss=%s", params, status, loc, tc.iss)
				}
			}
		})
	}
	_, doc := getJSON(t, newServer(t).WellKnownURL())
	if _, present := doc["authorization_response_iss_parameter_supported"]; present {
		t.Error("a plain server advertises the iss parameter")
	}
}

// clientDocument serves client ID metadata documents over TLS: the
// document at each path is built by the function given its own URL.
func clientDocuments(t *testing.T, docs map[string]func(self string) any) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		build, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch doc := build(srv.URL + r.URL.Path).(type) {
		case string:
			_, _ = w.Write([]byte(doc))
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientIDMetadataDocuments(t *testing.T) {
	const redirect = "http://127.0.0.1:9999/callback"
	good := func(self string) any {
		return map[string]any{"client_id": self, "client_name": "cimd client", "redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"}
	}
	with := func(k string, v any) func(string) any {
		return func(self string) any {
			d := good(self).(map[string]any)
			if v == nil {
				delete(d, k)
			} else {
				d[k] = v
			}
			return d
		}
	}
	docs := clientDocuments(t, map[string]func(string) any{
		"/client.json":         good,
		"/other-id.json":       with("client_id", "https://elsewhere.example/client.json"),
		"/secret.json":         with("client_secret", "s3cret"),
		"/confidential.json":   with("token_endpoint_auth_method", "client_secret_basic"),
		"/no-redirects.json":   with("redirect_uris", nil),
		"/other-redirect.json": with("redirect_uris", []string{"http://127.0.0.1:9999/elsewhere"}),
		"/garbage.json":        func(string) any { return "<html>" },
	})
	s := newServer(t, WithClientIDMetadataDocuments(docs.Client()))
	_, doc := getJSON(t, s.WellKnownURL())
	if doc["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata does not advertise CIMD: %v", doc)
	}
	c := &testClient{
		id:          docs.URL + "/client.json",
		redirectURI: redirect,
		authorize:   doc["authorization_endpoint"].(string),
		token:       doc["token_endpoint"].(string),
	}
	verifier, challenge := pkce()
	status, resp := c.redeem(t, c.getCode(t, nil, challenge), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, resp)
	}
	if _, claims := parse(t, s, resp["access_token"].(string)); claims["azp"] != c.id {
		t.Errorf("azp = %v, want the document's URL", claims["azp"])
	}

	for _, tc := range []struct {
		name, id, code, desc string
	}{
		{"document names another client_id", docs.URL + "/other-id.json", "invalid_client", `client metadata document: its client_id "https://elsewhere.example/client.json" is not its URL`},
		{"document carries a secret", docs.URL + "/secret.json", "invalid_client", "client metadata document: it must not carry a client_secret"},
		{"confidential client", docs.URL + "/confidential.json", "invalid_client", "client metadata document: token_endpoint_auth_method must be none"},
		{"no redirect URIs", docs.URL + "/no-redirects.json", "invalid_client", "client metadata document: redirect_uris is required"},
		{"redirect URI not listed", docs.URL + "/other-redirect.json", "invalid_request", `redirect_uri "` + redirect + `" is not registered for the client`},
		{"not JSON", docs.URL + "/garbage.json", "invalid_client", "client metadata document: not a JSON object"},
		{"no document there", docs.URL + "/missing.json", "invalid_client", "client metadata document: fetching it answered 404"},
		{"plain http", "http" + strings.TrimPrefix(docs.URL, "https") + "/client.json", "invalid_request", `unknown client_id "http` + strings.TrimPrefix(docs.URL, "https") + `/client.json"`},
		{"no path", docs.URL, "invalid_client", `client_id "` + docs.URL + `" has no path`},
		{"dot segment", docs.URL + "/x/../client.json", "invalid_client", `client_id "` + docs.URL + `/x/../client.json" has a dot segment`},
		{"fragment", docs.URL + "/client.json#x", "invalid_client", `client_id "` + docs.URL + `/client.json#x" must not carry user info or a fragment`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := *c
			bad.id = tc.id
			status, _, body := get(t, bad.authorizeURL(nil, challenge))
			got := decodeObject(t, body)
			if status != http.StatusBadRequest || got["error"] != tc.code || got["error_description"] != tc.desc {
				t.Errorf("status %d, %v; want 400 %s %q", status, got, tc.code, tc.desc)
			}
		})
	}

	// Without the option an https client_id is just unknown.
	plain := newServer(t)
	_, pdoc := getJSON(t, plain.WellKnownURL())
	if _, present := pdoc["client_id_metadata_document_supported"]; present {
		t.Error("a plain server advertises CIMD")
	}
	c.authorize = pdoc["authorization_endpoint"].(string)
	if status, _, _ := get(t, c.authorizeURL(nil, challenge)); status != http.StatusBadRequest {
		t.Errorf("a plain server answered an https client_id with %d", status)
	}
}

func TestUnfetchedClientIDMetadataDocuments(t *testing.T) {
	s := newServer(t, WithUnfetchedClientIDMetadataDocuments())
	_, doc := getJSON(t, s.WellKnownURL())
	if doc["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata does not advertise CIMD: %v", doc)
	}
	c := &testClient{
		id:          "https://client.example/oauth/metadata.json",
		redirectURI: "http://127.0.0.1:9999/callback",
		authorize:   doc["authorization_endpoint"].(string),
		token:       doc["token_endpoint"].(string),
	}
	verifier, challenge := pkce()
	status, resp := c.redeem(t, c.getCode(t, nil, challenge), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, resp)
	}
	status, _, body := get(t, c.authorizeURL(map[string]string{"redirect_uri": ""}, challenge))
	if got := decodeObject(t, body); status != http.StatusBadRequest || got["error_description"] != "redirect_uri is required with a client ID metadata document" {
		t.Errorf("without redirect_uri: %d %v", status, got)
	}
}
