// Package dpop checks DPoP proofs (RFC 9449): the signed JWT a client
// sends in the DPoP header to show it holds the key its access token is
// bound to. It knows nothing of MCP or of any identity provider; a
// resource server's middleware calls it after verifying the token.
//
//	v, err := dpop.NewVerifier(dpop.Options{})
//	// per request, with URL from configuration, never from Host headers:
//	p, err := v.Verify(ctx, r.Header.Get("DPoP"), dpop.Request{
//		Method: r.Method, URL: resourceURL + r.URL.Path,
//		AccessToken: token, KeyThumbprint: claims.CNF.JKT,
//	})
//	// errors.Is(err, dpop.ErrUseNonce): 401 error="use_dpop_nonce"
//	// errors.Is(err, dpop.ErrInvalidProof): 401 error="invalid_dpop_proof"
//
// The caller checks that exactly one DPoP header was sent. [NewProof]
// makes proofs, for clients and for tests.
package dpop
