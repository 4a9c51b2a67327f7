package bus

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nkeys"
)

// userClaims are the claims of a NATS user JWT the bus reads (the JWT is the
// one nats-io/jwt/v2 writes; the agent does not link that library).
type userClaims struct {
	ID       string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	Issuer   string `json:"iss"`
	Name     string `json:"name"`
	Subject  string `json:"sub"`
	Expires  int64  `json:"exp"`
	Nats     struct {
		Type          string `json:"type"`
		Version       int    `json:"version"`
		IssuerAccount string `json:"issuer_account"`
		Pub           struct {
			Allow []string `json:"allow"`
		} `json:"pub"`
		Sub struct {
			Allow []string `json:"allow"`
		} `json:"sub"`
	} `json:"nats"`
}

// jwtHeader is the JOSE header of a NATS JWT.
type jwtHeader struct {
	Type      string `json:"typ"`
	Algorithm string `json:"alg"`
}

// maxJWT bounds a user JWT (the verifier's are about 1 KiB).
const maxJWT = 64 << 10

// decodeUserJWT decodes a NATS v2 user JWT and checks its signature by its
// issuer, an account key.
func decodeUserJWT(token string) (*userClaims, error) {
	if len(token) > maxJWT {
		return nil, fmt.Errorf("longer than %d bytes", maxJWT)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a jwt: want three parts")
	}
	var h jwtHeader
	if err := decodeSegment(parts[0], &h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if !strings.EqualFold(h.Type, "JWT") || h.Algorithm != "ed25519-nkey" {
		return nil, fmt.Errorf("header: type %q algorithm %q, want JWT ed25519-nkey", h.Type, h.Algorithm)
	}
	var c userClaims
	if err := decodeSegment(parts[1], &c); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if c.Nats.Type != "user" || c.Nats.Version != 2 {
		return nil, fmt.Errorf("claims: type %q version %d, want user version 2", c.Nats.Type, c.Nats.Version)
	}
	if !nkeys.IsValidPublicUserKey(c.Subject) {
		return nil, errors.New("claims: subject is not a user key")
	}
	if !nkeys.IsValidPublicAccountKey(c.Issuer) {
		return nil, errors.New("claims: issuer is not an account key")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	issuer, err := nkeys.FromPublicKey(c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if err := issuer.Verify([]byte(parts[0]+"."+parts[1]), sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return &c, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// decoratedBlocks returns the first max blocks of a decorated file: a line
// of dashes (-----BEGIN ...-----), one line of content, a line of dashes.
// A .creds file holds the user JWT first, then the user seed.
func decoratedBlocks(s string, max int) []string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	dashed := func(l string) bool { return len(l) >= 6 && strings.HasPrefix(l, "---") && strings.HasSuffix(l, "---") }
	var out []string
	for i := 0; i+2 < len(lines) && len(out) < max; i++ {
		if dashed(lines[i]) && lines[i+1] != "" && !dashed(lines[i+1]) && dashed(lines[i+2]) {
			out = append(out, lines[i+1])
			i += 2
		}
	}
	return out
}
