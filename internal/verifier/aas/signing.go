package aas

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// CertIssuer issues the certificate of the token signing key (the CMS).
// The chain runs leaf → intermediate → root.
type CertIssuer interface {
	IssueSigning(pub crypto.PublicKey, cn string, ttl time.Duration) ([]*x509.Certificate, error)
}

// signingKeySecret names the PKCS#8 DER of the token signing key in the store.
const signingKeySecret = "aas/jwt-signing-key" //nolint:gosec // G101: the name of a stored secret, not a secret

// signer holds the token signing key and its certificate chain, and asks the
// CMS for a new certificate when the current one nears its end.
type signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	issuer CertIssuer
	cn     string
	ttl    time.Duration
	logger *slog.Logger

	mu       sync.Mutex
	chain    []*x509.Certificate // current, leaf first
	previous *x509.Certificate   // leaf before the last re-issue, if any
}

// loadOrCreateSigningKey reads the signing key from the store or creates and
// stores one. Two replicas starting together agree on the first stored key.
func loadOrCreateSigningKey(ctx context.Context, secrets SecretStore) (*ecdsa.PrivateKey, error) {
	der, err := secrets.GetSecret(ctx, signingKeySecret)
	if errors.Is(err, ErrNotFound) {
		key, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("generate token signing key: %w", gerr)
		}
		der, gerr = x509.MarshalPKCS8PrivateKey(key)
		if gerr != nil {
			return nil, fmt.Errorf("encode token signing key: %w", gerr)
		}
		cerr := secrets.CreateSecret(ctx, signingKeySecret, der)
		if cerr == nil {
			return key, nil
		}
		if !errors.Is(cerr, ErrConflict) {
			return nil, fmt.Errorf("store token signing key: %w", cerr)
		}
		der, err = secrets.GetSecret(ctx, signingKeySecret) // another replica won
	}
	if err != nil {
		return nil, fmt.Errorf("read token signing key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse token signing key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("stored token signing key is not ECDSA P-256")
	}
	return key, nil
}

func newSigner(key *ecdsa.PrivateKey, issuer CertIssuer, cn string, ttl time.Duration, now time.Time, logger *slog.Logger) (*signer, error) {
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	s := &signer{key: key, kid: kid, issuer: issuer, cn: cn, ttl: ttl, logger: logger}
	chain, err := s.issue(now)
	if err != nil {
		return nil, err
	}
	s.chain = chain
	return s, nil
}

func (s *signer) issue(now time.Time) ([]*x509.Certificate, error) {
	chain, err := s.issuer.IssueSigning(&s.key.PublicKey, s.cn, s.ttl)
	if err != nil {
		return nil, fmt.Errorf("issue token signing certificate: %w", err)
	}
	if len(chain) == 0 {
		return nil, errors.New("issue token signing certificate: empty chain")
	}
	pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&s.key.PublicKey) {
		return nil, errors.New("issue token signing certificate: certificate is not for the signing key")
	}
	if !now.Before(chain[0].NotAfter) {
		return nil, errors.New("issue token signing certificate: certificate already expired")
	}
	return chain, nil
}

// certificates returns the current chain and the previous leaf, re-issuing
// the certificate when less than a third of its lifetime is left. A failed
// re-issue keeps the current certificate while it is valid.
func (s *signer) certificates(now time.Time) ([]*x509.Certificate, *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	leaf := s.chain[0]
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if leaf.NotAfter.Sub(now) < life/3 {
		chain, err := s.issue(now)
		if err != nil {
			s.logger.Error("re-issue of the token signing certificate failed; keeping the current one",
				slog.Time(keyNotAfter, leaf.NotAfter), slog.String(keyError, err.Error()))
		} else {
			s.previous, s.chain = leaf, chain
			s.logger.Info("token signing certificate re-issued", slog.Time(keyNotAfter, chain[0].NotAfter))
		}
	}
	return s.chain, s.previous
}

// certificatesPEM is the body of GET /aas/v1/jwt-certificates: the current
// leaf, the previous leaf if any, then the current chain's CA certificates.
func (s *signer) certificatesPEM(now time.Time) []byte {
	chain, prev := s.certificates(now)
	var out []byte
	add := func(c *x509.Certificate) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	add(chain[0])
	if prev != nil && now.Before(prev.NotAfter) {
		add(prev)
	}
	for _, c := range chain[1:] {
		add(c)
	}
	return out
}

// jwks is the JSON Web Key Set (RFC 7517) of the token signing key: its
// kid, algorithm and certificate chain, leaf first.
func (s *signer) jwks(now time.Time) jose.JSONWebKeySet {
	chain, _ := s.certificates(now)
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: algES256, Use: "sig", Certificates: chain},
	}}
}
