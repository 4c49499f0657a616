package descopetest

import (
	"crypto/rsa"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint returns an access token signed (RS256) with the current signing key,
// as the token endpoint would issue it for the server's user. Its header
// carries alg "RS256", typ "JWT" and the key's kid.
//
// The default claims are: iss [Server.Issuer]; sub the user's subject; aud
// a list holding [Server.MCPServerURL], or [Server.ProjectID] when no MCP
// Server URL is set; azp [DefaultClientID]; exp now plus the
// token lifetime; iat now; jti a random ID; drn "DS"; amr; and the user's
// email, name, roles, permissions, tenants and dct claims where set. There is
// no scope claim by default.
//
// Each entry of claims replaces the default claim of that name or adds a
// claim; an entry whose value is nil removes the claim. Values are encoded
// as JSON, so for instance exp may be given as an int64 Unix time or a
// *jwt.NumericDate. Mint panics if a value cannot be encoded as JSON.
func (s *Server) Mint(claims map[string]any) string {
	return s.MintWithHeader(nil, claims)
}

// MintWithHeader is like [Server.Mint] but also changes the JOSE header: each
// entry of header replaces or adds a header field, and an entry whose value
// is nil removes the field (for instance "kid" or "typ"). The token is
// always signed with RS256 and the current signing key, whatever alg the
// header then names.
func (s *Server) MintWithHeader(header, claims map[string]any) string {
	c := s.accessClaims(s.currentUser(), DefaultClientID, "", s.defaultAudience())
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return s.sign(header, c)
}

// sign signs claims with the current signing key, after applying the header
// overrides.
func (s *Server) sign(header map[string]any, claims jwt.MapClaims) string {
	kid, key := s.signingKey()
	return signWith(kid, key, header, claims)
}

// signWith signs claims with key, naming kid in the header, after applying
// the header overrides.
func signWith(kid string, key *rsa.PrivateKey, header map[string]any, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		panic("descopetest: sign token: " + err.Error())
	}
	return signed
}

// accessClaims returns the claims of an access token for user, issued to
// clientID with the given scope (left out when empty) and audience.
func (s *Server) accessClaims(u User, clientID, scope string, aud []string) jwt.MapClaims {
	now := s.now()
	amr := u.AMR
	if len(amr) == 0 {
		amr = []string{"pwd"}
	}
	c := jwt.MapClaims{
		"iss": s.Issuer(),
		"aud": aud,
		"azp": clientID,
		"exp": now.Add(s.lifetime).Unix(),
		"iat": now.Unix(),
		"jti": randomID("", 32),
		"drn": "DS",
		"amr": amr,
	}
	setIf := func(name, value string) {
		if value != "" {
			c[name] = value
		}
	}
	setIf("sub", u.Subject)
	setIf("scope", scope)
	setIf("email", u.Email)
	setIf("name", u.Name)
	dct := u.CurrentTenant
	if dct == "" {
		dct = s.shapes.tenant // a tenant-scoped issuer's tenant
	}
	setIf("dct", dct)
	if len(u.Roles) > 0 {
		c["roles"] = u.Roles
	}
	if len(u.Permissions) > 0 {
		c["permissions"] = u.Permissions
	}
	if len(u.Tenants) > 0 {
		tenants := make(map[string]any, len(u.Tenants))
		for id, t := range u.Tenants {
			tenants[id] = map[string]any{
				"roles":       nonNil(t.Roles),
				"permissions": nonNil(t.Permissions),
			}
		}
		c["tenants"] = tenants
	}
	return c
}

// nonNil returns s, or an empty slice if s is nil, so that it encodes as []
// rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// expiresIn returns the expires_in value of token responses.
func (s *Server) expiresIn() int64 { return int64(s.lifetime / time.Second) }
