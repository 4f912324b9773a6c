// Command devtoken prints a JSON Web Token that the shop's gateway accepts on a
// local run: ES256, signed with the development key dev/jwt-dev-key.pem, whose
// public half is dev/jwks.json, the customers authorizer's jwksFile.
//
//	TOKEN=$(go run ./examples/shop/tools/devtoken -sub 1)
//
// The key is in git for the sake of the example: never trust it anywhere else.
// A real deployment points the authorizer at its identity provider's JWKS.
package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	keyFile := flag.String("key", "examples/shop/dev/jwt-dev-key.pem", "PEM file of the ECDSA P-256 signing key")
	sub := flag.String("sub", "1", "subject: the customer's user id")
	iss := flag.String("iss", "https://auth.shop.localhost/", "issuer, as the authorizer requires")
	aud := flag.String("aud", "shop-api", "audience, one of the authorizer's")
	ttl := flag.Duration("ttl", time.Hour, "lifetime of the token")
	flag.Parse()
	tok, err := sign(*keyFile, map[string]any{
		"iss": *iss, "aud": *aud, "sub": *sub,
		"iat": time.Now().Unix(), "exp": time.Now().Add(*ttl).Unix(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "devtoken:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}

// sign returns the compact JWS of claims, ES256 with the key in keyFile.
func sign(keyFile string, claims map[string]any) (string, error) {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", keyFile)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", keyFile, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve.Params().Name != "P-256" {
		return "", fmt.Errorf("%s: not an ECDSA P-256 key", keyFile)
	}
	enc := base64.RawURLEncoding.EncodeToString
	header, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": "shop-dev"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := enc(header) + "." + enc(payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64) // JWS wants r and s as two 32-byte big-endian halves, not ASN.1
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc(sig), nil
}
