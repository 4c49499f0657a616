package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/mcp-go-contrib/descope/auth/dpop"
)

func Example() {
	v, err := dpop.NewVerifier(dpop.Options{})
	if err != nil {
		panic(err)
	}

	// The client: a key pair, and a proof per request.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, _ := dpop.Thumbprint(key.Public()) // the token's cnf.jkt
	proof, _ := dpop.NewProof(key, dpop.ProofClaims{Method: "POST", URL: "https://mcp.example.com/mcp", AccessToken: "token"})

	// The server: URL from configuration, never from Host headers.
	req := dpop.Request{Method: "POST", URL: "https://mcp.example.com/mcp", AccessToken: "token", KeyThumbprint: jkt}
	p, err := v.Verify(context.Background(), proof, req)
	fmt.Println(err == nil, p.Algorithm, p.Thumbprint == jkt)

	// The same proof again is a replay.
	_, err = v.Verify(context.Background(), proof, req)
	fmt.Println(errors.Is(err, dpop.ErrReplay), errors.Is(err, dpop.ErrInvalidProof), err)
	// Output:
	// true ES256 true
	// true true dpop: proof replayed (replay)
}
