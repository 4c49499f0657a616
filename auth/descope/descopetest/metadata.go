package descopetest

import "net/http"

// metadata is the authorization server metadata (RFC 8414) and OpenID
// Connect discovery document of one issuer.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	DPoPSigningAlgValuesSupported     []string `json:"dpop_signing_alg_values_supported"`
	// RFC 9207, with WithAuthorizationResponseIssuer.
	AuthorizationResponseIssSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// Client ID Metadata Documents, with WithClientIDMetadataDocuments or
	// WithUnfetchedClientIDMetadataDocuments.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// clientAuthMethods are the client authentication methods the token
// endpoint accepts.
var clientAuthMethods = []string{authNone, authSecretPost, authSecretBasic}

// metadataFor returns the metadata document of the agentic issuer, or of the
// project-level one if projectLevel is set. With WithIssuerDrift the agentic
// document declares the project-level issuer, as newer Descope MCP Servers
// do; with WithCustomDomain every URL in it is on the custom domain.
func (s *Server) metadataFor(projectLevel bool) metadata {
	issuer := s.AgenticIssuer()
	if projectLevel || s.shapes.drift {
		issuer = s.ProjectIssuer()
	}
	base := s.issuerBase()
	endpoint := func(name string) string { return base + s.oauthPath(projectLevel, name) }
	return metadata{
		Issuer:                            issuer,
		AuthorizationEndpoint:             endpoint("authorize"),
		TokenEndpoint:                     endpoint("token"),
		RegistrationEndpoint:              base + s.registrationPath(),
		JWKSURI:                           base + s.jwksPath(),
		RevocationEndpoint:                endpoint("revoke"),
		UserinfoEndpoint:                  endpoint("userinfo"),
		ResponseTypesSupported:            []string{"code"},
		GrantTypesSupported:               []string{grantAuthorizationCode, grantRefreshToken},
		CodeChallengeMethodsSupported:     []string{"S256"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		TokenEndpointAuthMethodsSupported: clientAuthMethods,
		RevocationEndpointAuthMethods:     clientAuthMethods,
		ScopesSupported:                   nonNil(s.scopes),
		ClaimsSupported:                   []string{"iss", "aud", "iat", "exp", "sub", "name", "email"},
		DPoPSigningAlgValuesSupported:     dpopAlgorithms,
		AuthorizationResponseIssSupported: s.shapes.issInResponse,
		ClientIDMetadataDocumentSupported: s.shapes.cimd != cimdOff,
	}
}

// metadataHandler returns the handler of the metadata endpoints of one
// issuer, subject to the metadata fault and delay.
func (s *Server) metadataHandler(projectLevel bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.metadataRequests.Add(1)
		if !s.pause(r, s.metadataDelay.Load()) {
			return
		}
		if s.serveFault(w, r, Fault(s.metadataFault.Load()), "{}") {
			return
		}
		writeJSON(w, http.StatusOK, s.metadataFor(projectLevel))
	}
}
