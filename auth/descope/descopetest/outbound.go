package descopetest

// outbound.go imitates Descope's Connections (outbound apps): the token
// vault a server's tools fetch users' third-party tokens from with the
// user's own access token, and the connect link that connects a user.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// ScopeOutboundTokenFetch is the scope an access token must carry for the
// vault to answer it.
const ScopeOutboundTokenFetch = "outbound.token.fetch"

// codeNotConnected is Descope's error code for a user (or tenant) who has
// not connected the app.
const codeNotConnected = "E111504"

// outboundPaths are where the vault answers.
const (
	outboundUserToken         = "/v1/mgmt/outbound/app/user/token"
	outboundUserTokenLatest   = "/v1/mgmt/outbound/app/user/token/latest"
	outboundTenantToken       = "/v1/mgmt/outbound/app/tenant/token"
	outboundTenantTokenLatest = "/v1/mgmt/outbound/app/tenant/token/latest"
	outboundConnect           = "/v1/mgmt/outbound/app/connect"
	outboundConnectLink       = "/outbound/connect/" // + a random ID, followed by the user
)

// maxPendingConnects bounds the connect links waiting to be followed; a
// link made beyond it drops an unfollowed one.
const maxPendingConnects = 1000

// outboundTokenLifetime is how long the third-party tokens the vault hands
// out last.
const outboundTokenLifetime = time.Hour

// connection is one user's (or tenant's) connection to an outbound app.
type connection struct {
	token  string
	scopes []string
}

// pendingConnect is a connect link waiting to be followed.
type pendingConnect struct {
	owner, app, redirect string
	scopes               []string
}

// ConnectOutboundApp connects subject (a user ID, or "tenant:" followed by
// a tenant ID for a tenant-wide connection) to app with scopes, as if they
// had followed a connect link.
func (s *Server) ConnectOutboundApp(subject, app string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connections[subject+"\x00"+app] = &connection{token: "tp-" + randomToken(), scopes: slices.Clone(scopes)}
}

// DisconnectOutboundApp removes subject's connection to app.
func (s *Server) DisconnectOutboundApp(subject, app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.connections, subject+"\x00"+app)
}

// OutboundToken reports whose third-party token token is, for a fake
// third-party API that checks the tokens the vault hands out: the subject
// it was connected for (a user ID, or "tenant:" and a tenant ID), the app,
// and the scopes granted. ok is false for a token the vault never handed
// out or whose connection was removed.
func (s *Server) OutboundToken(token string) (subject, app string, scopes []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, c := range s.connections {
		if c.token == token {
			subject, app, _ = strings.Cut(key, "\x00")
			return subject, app, slices.Clone(c.scopes), true
		}
	}
	return "", "", nil, false
}

// OutboundTokenRequests counts the requests the vault's token endpoints
// received.
func (s *Server) OutboundTokenRequests() int64 { return s.outboundRequests.Load() }

// SetOutboundFault makes the vault's endpoints show fault f (FaultNone
// restores normal answers).
func (s *Server) SetOutboundFault(f Fault) { s.outboundFault.Store(int64(f)) }

// SetOutboundDelay makes the vault's endpoints wait d before answering.
func (s *Server) SetOutboundDelay(d time.Duration) { s.outboundDelay.Store(int64(d)) }

// SetOutboundExpiryFormat makes the token endpoints write
// accessTokenExpiry as format returns it, for the forms Descope's sources
// disagree on: a number of seconds (the default, nil restores it), a
// numeric string, RFC 3339 text.
func (s *Server) SetOutboundExpiryFormat(format func(expiry time.Time) any) {
	if format == nil {
		s.outboundExpiry.Store(nil)
		return
	}
	s.outboundExpiry.Store(&format)
}

type outboundState struct {
	outboundRequests atomic.Int64
	outboundFault    atomic.Int64
	outboundDelay    atomic.Int64
	outboundExpiry   atomic.Pointer[func(time.Time) any]
}

// descopeError is the shape of Descope's API errors.
type descopeError struct {
	Code        string `json:"errorCode"`
	Description string `json:"errorDescription"`
	Message     string `json:"errorMessage"`
}

func writeDescopeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, descopeError{Code: code, Description: description, Message: description})
}

// outboundCaller checks the vault's authentication, "Bearer
// <project>:<access token>" with a token of this server that carries
// ScopeOutboundTokenFetch, and returns the token's subject.
func (s *Server) outboundCaller(w http.ResponseWriter, r *http.Request) (string, bool) {
	project, token, ok := strings.Cut(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), ":")
	if !ok || project != s.projectID || token == "" {
		writeDescopeError(w, http.StatusUnauthorized, "E011003", "Request doesn't contain a valid project ID and access token")
		return "", false
	}
	claims, err := s.verifyAccessToken(token)
	if err != nil {
		writeDescopeError(w, http.StatusUnauthorized, "E061005", "Invalid access token")
		return "", false
	}
	scope, _ := claims["scope"].(string)
	if !slices.Contains(strings.Fields(scope), ScopeOutboundTokenFetch) {
		writeDescopeError(w, http.StatusForbidden, "E011004", "The access token does not grant "+ScopeOutboundTokenFetch)
		return "", false
	}
	sub, _ := claims["sub"].(string)
	return sub, true
}

// outboundPause applies the vault's delay and fault; it reports whether the
// request was answered already.
func (s *Server) outboundPause(w http.ResponseWriter, r *http.Request) bool {
	if !s.pause(r, s.outboundDelay.Load()) {
		return true
	}
	switch Fault(s.outboundFault.Load()) {
	case FaultNone:
		return false
	case FaultHang:
		s.pause(r, int64(24*time.Hour))
		return true
	default:
		writeDescopeError(w, http.StatusServiceUnavailable, "E000001", "Service unavailable")
		return true
	}
}

// outboundTokenRequest is what the token endpoints accept: the documented
// fields only, as Descope's gateway refuses unknown ones.
type outboundTokenRequest struct {
	AppID    string   `json:"appId"`
	UserID   string   `json:"userId"`
	TenantID string   `json:"tenantId"`
	Scopes   []string `json:"scopes"`
	Options  *struct {
		WithRefreshToken bool `json:"withRefreshToken"`
		ForceRefresh     bool `json:"forceRefresh"`
	} `json:"options"`
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// handleOutboundToken serves the four token endpoints.
func (s *Server) handleOutboundToken(w http.ResponseWriter, r *http.Request) {
	s.outboundRequests.Add(1)
	if s.outboundPause(w, r) {
		return
	}
	sub, ok := s.outboundCaller(w, r)
	if !ok {
		return
	}
	var req outboundTokenRequest
	if err := decodeStrict(r, &req); err != nil || req.AppID == "" {
		writeDescopeError(w, http.StatusBadRequest, "E011002", "Request is invalid")
		return
	}
	tenantWide := strings.HasPrefix(r.URL.Path, "/v1/mgmt/outbound/app/tenant/")
	byScopes := !strings.HasSuffix(r.URL.Path, "/latest")
	owner := req.UserID
	switch {
	case tenantWide && (req.TenantID == "" || req.UserID != ""),
		!tenantWide && req.UserID == "",
		!byScopes && req.Scopes != nil:
		writeDescopeError(w, http.StatusBadRequest, "E011002", "Request is invalid")
		return
	case tenantWide:
		owner = "tenant:" + req.TenantID
	case req.UserID != sub:
		// Descope's access policies: a user's token fetches that user's
		// connections only.
		writeDescopeError(w, http.StatusForbidden, "E011004", "Not allowed to fetch another user's token")
		return
	}
	s.mu.Lock()
	c := s.connections[owner+"\x00"+req.AppID]
	s.mu.Unlock()
	if c == nil || (byScopes && !containsAll(c.scopes, req.Scopes)) {
		writeDescopeError(w, http.StatusBadRequest, codeNotConnected, "Outbound app user token not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": map[string]any{
		"appId":             req.AppID,
		"userId":            req.UserID,
		"tenantId":          req.TenantID,
		"accessToken":       c.token,
		"accessTokenType":   "Bearer",
		"accessTokenExpiry": s.outboundExpiryValue(s.now().Add(outboundTokenLifetime)),
		"scopes":            c.scopes,
		"hasRefreshToken":   false,
	}})
}

func (s *Server) outboundExpiryValue(expiry time.Time) any {
	if f := s.outboundExpiry.Load(); f != nil {
		return (*f)(expiry)
	}
	return expiry.Unix()
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// handleOutboundConnect answers a connect request with a link that, once
// followed, connects the caller to the app.
func (s *Server) handleOutboundConnect(w http.ResponseWriter, r *http.Request) {
	if s.outboundPause(w, r) {
		return
	}
	sub, ok := s.outboundCaller(w, r)
	if !ok {
		return
	}
	var req struct {
		AppID   string `json:"appId"`
		Options struct {
			RedirectURL string   `json:"redirectUrl"`
			Scopes      []string `json:"scopes"`
		} `json:"options"`
	}
	if err := decodeStrict(r, &req); err != nil || req.AppID == "" {
		writeDescopeError(w, http.StatusBadRequest, "E011002", "Request is invalid")
		return
	}
	if ru := req.Options.RedirectURL; ru != "" {
		if err := checkAbsoluteURL(ru); err != nil {
			writeDescopeError(w, http.StatusBadRequest, "E011002", "redirectUrl is invalid")
			return
		}
	}
	id := randomToken()
	s.mu.Lock()
	for k := range s.pendingConnects {
		if len(s.pendingConnects) < maxPendingConnects {
			break
		}
		delete(s.pendingConnects, k)
	}
	s.pendingConnects[id] = &pendingConnect{owner: sub, app: req.AppID, redirect: req.Options.RedirectURL, scopes: slices.Clone(req.Options.Scopes)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"url": s.base + outboundConnectLink + id})
}

// handleConnectLink is the page a connect link leads to: here the user is
// connected at once (the fake asks no third party), then sent on to the
// redirect URL the server named.
func (s *Server) handleConnectLink(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, outboundConnectLink)
	s.mu.Lock()
	p := s.pendingConnects[id]
	delete(s.pendingConnects, id)
	s.mu.Unlock()
	if p == nil {
		http.Error(w, "unknown or used connect link", http.StatusNotFound)
		return
	}
	s.ConnectOutboundApp(p.owner, p.app, p.scopes...)
	if p.redirect == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "connected %s\n", p.app)
		return
	}
	u, _ := url.Parse(p.redirect) // checked when the link was made
	q := u.Query()
	q.Set("app", p.app)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
