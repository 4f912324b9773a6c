package shop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// testDevToken runs tools/devtoken and verifies its token as the gateway's
// customers authorizer would: the signature with the key of the spec's
// jwksFile, the algorithm against its algorithms, the issuer and audience
// against its own.
func testDevToken(t *testing.T, app *spec.App, bins string) {
	auth := app.Gateway.Authorizers["customers"]
	if auth == nil || auth.Type != "jwt" || auth.JWKSFile == "" {
		t.Fatalf("the spec has no jwt authorizer customers with a jwksFile")
	}
	cmd := exec.Command(filepath.Join(bins, "devtoken"), "-key", filepath.Join(app.Dir, "dev", "jwt-dev-key.pem"), "-sub", "42")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("devtoken: %v", err)
	}
	parts := strings.Split(strings.TrimSpace(string(out)), ".")
	if len(parts) != 3 {
		t.Fatalf("devtoken printed %q, not a compact JWS", out)
	}
	var header struct{ Alg, Kid string }
	var claims struct {
		Iss, Aud, Sub string
		Exp           int64
	}
	decodePart(t, parts[0], &header)
	decodePart(t, parts[1], &claims)
	if !slices.Contains(auth.Algorithms, header.Alg) {
		t.Errorf("token alg %s, the authorizer allows %v", header.Alg, auth.Algorithms)
	}
	if claims.Iss != auth.Issuer || !slices.Contains(auth.Audience, claims.Aud) || claims.Sub != "42" {
		t.Errorf("claims %+v, the authorizer wants issuer %s and audience %v", claims, auth.Issuer, auth.Audience)
	}
	if exp := time.Unix(claims.Exp, 0); exp.Before(time.Now()) {
		t.Errorf("token expired at %s", exp)
	}

	raw, err := os.ReadFile(filepath.Join(app.Dir, auth.JWKSFile))
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kty, Crv, Kid, Alg, X, Y string }
	}
	if err := json.Unmarshal(raw, &jwks); err != nil {
		t.Fatalf("%s: %v", auth.JWKSFile, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature %q: %v", parts[2], err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	verified := false
	for _, k := range jwks.Keys {
		if k.Kid != header.Kid || k.Kty != "EC" || k.Crv != "P-256" {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil {
			t.Fatalf("key %s: bad coordinates", k.Kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
		if err != nil {
			t.Fatalf("key %s: %v", k.Kid, err)
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		verified = verified || ecdsa.Verify(pub, digest[:], r, s)
	}
	if !verified {
		t.Errorf("no key %q of %s verifies the token", header.Kid, auth.JWKSFile)
	}
}

func decodePart(t *testing.T, part string, v any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("JWS part %q: %v", part, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("JWS part %s: %v", raw, err)
	}
}
