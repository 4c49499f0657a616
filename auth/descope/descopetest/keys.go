package descopetest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"net/http"
	"slices"
)

// keyBits is the size of the RSA keys the server makes.
const keyBits = 2048

// jwk is the JSON form of one RSA public key in the key set.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// jwkSet is the JSON form of the key set.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// newKey makes an RSA key and a key ID for it and remembers both, without
// publishing the key.
func (s *Server) newKey() string {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		panic("descopetest: generate RSA key: " + err.Error())
	}
	kid := randomID("SK", 27)
	s.mu.Lock()
	s.keys[kid] = key
	s.mu.Unlock()
	return kid
}

// SigningKeyID returns the key ID (kid) of the key that signs tokens now.
func (s *Server) SigningKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signingKID
}

// KeyIDs returns the key IDs of the published keys, oldest first.
func (s *Server) KeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.published)
}

// AddKey makes a new RSA key and publishes it in the key set without
// signing with it yet, as Descope does before a rotation. It returns the
// new key's kid.
func (s *Server) AddKey() string {
	kid := s.newKey()
	s.mu.Lock()
	s.published = append(s.published, kid)
	s.mu.Unlock()
	return kid
}

// RotateKey makes a new RSA key, publishes it and signs with it from now on.
// Older keys stay published until [Server.RemoveKey] removes them. It
// returns the new key's kid.
func (s *Server) RotateKey() string {
	kid := s.newKey()
	s.mu.Lock()
	s.published = append(s.published, kid)
	s.signingKID = kid
	s.mu.Unlock()
	return kid
}

// RemoveKey takes the key kid out of the key set. If it was the signing
// key, the most recently published remaining key signs from now on; if no
// key remains, the removed key goes on signing, so that tokens can be made
// whose key the key set does not have. Unknown key IDs are ignored.
func (s *Server) RemoveKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.published, kid)
	if i < 0 {
		return
	}
	s.published = slices.Delete(s.published, i, i+1)
	if kid == s.signingKID && len(s.published) > 0 {
		s.signingKID = s.published[len(s.published)-1]
	}
}

// PublicKey returns the public key with the key ID kid, or nil if the server
// never made such a key. Keys removed from the key set are still returned.
func (s *Server) PublicKey(kid string) *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := s.keys[kid]
	if !ok {
		return nil
	}
	pub := key.PublicKey
	return &pub
}

// signingKey returns the kid and private key that sign tokens now.
func (s *Server) signingKey() (string, *rsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signingKID, s.keys[s.signingKID]
}

// publishedKey returns the public key with the key ID kid if it is in the
// key set now.
func (s *Server) publishedKey(kid string) *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.published, kid) {
		return nil
	}
	return &s.keys[kid].PublicKey
}

// keySet returns the key set as served at the JWKS URL.
func (s *Server) keySet() jwkSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := jwkSet{Keys: make([]jwk, 0, len(s.published))}
	for _, kid := range s.published {
		pub := s.keys[kid].PublicKey
		set.Keys = append(set.Keys, jwk{
			Kty: "RSA",
			Kid: kid,
			Use: "sig",
			Alg: "RS256",
			N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	return set
}

// handleJWKS serves the key set, subject to the JWKS fault and delay.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	s.jwksRequests.Add(1)
	if !s.pause(r, s.jwksDelay.Load()) {
		return
	}
	if s.serveFault(w, r, Fault(s.jwksFault.Load()), `{"keys":[]}`) {
		return
	}
	writeJSON(w, http.StatusOK, s.keySet())
}
