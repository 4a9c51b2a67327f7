package hvs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// signingSecret names the store secret that holds HVS's signing key and
// certificate chain (PEM), shared by every replica.
const signingSecret = "hvs-signing"

// signingKey is HVS's ECDSA P-256 key with its CMS signing chain (leaf
// first), and the report signer made of them.
type signingKey struct {
	key    *ecdsa.PrivateKey
	chain  []*x509.Certificate
	report ReportSigner
	// answers signs the key broker's answers to agents (answersign.go).
	answers *report.Signer
	// renewAt is when a third of the certificate's validity is left.
	renewAt time.Time
}

// signingKey returns the current signing key: the one in memory, else the
// store's, else a new one issued by CMS; a key whose certificate has a third
// of its validity left (or is not the verifier's signing identity under the
// CMS root, such as one stored by a version before the verifier signing CA)
// is replaced.
func (s *Service) signingKey(ctx context.Context) (*signingKey, error) {
	s.signingMu.Lock()
	defer s.signingMu.Unlock()
	now := s.cfg.Now()
	if k := s.signing; k != nil && now.Before(k.renewAt) {
		return k, nil
	}
	if b, err := s.store.GetSecret(ctx, signingSecret); err == nil {
		k, err := s.decodeSigning(b, now)
		if err == nil {
			s.signing = k
			return k, nil
		}
		s.logger.LogAttrs(ctx, slog.LevelWarn, "hvs signing certificate replaced", slog.String(keyError, err.Error()))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("hvs signing key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("hvs signing key: %w", err)
	}
	chain, err := s.ca.IssueVerifierSigning(&key.PublicKey, s.cfg.SigningValidity)
	if err != nil {
		return nil, fmt.Errorf("hvs signing certificate: %w", err)
	}
	k, err := s.newSigningKey(key, chain)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("hvs signing key: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	b = append(b, cms.EncodeChainPEM(chain)...)
	if err := s.store.PutSecret(ctx, signingSecret, b); err != nil {
		return nil, fmt.Errorf("hvs signing key: %w", err)
	}
	s.signing = k
	return k, nil
}

func (s *Service) newSigningKey(key *ecdsa.PrivateKey, chain []*x509.Certificate) (*signingKey, error) {
	rs, err := s.newSigner(key, chain)
	if err != nil {
		return nil, fmt.Errorf("hvs report signer: %w", err)
	}
	answers, ok := rs.(*report.Signer)
	if !ok {
		if answers, err = report.NewSigner(key, chain); err != nil {
			return nil, fmt.Errorf("hvs answer signer: %w", err)
		}
	}
	leaf := chain[0]
	third := leaf.NotAfter.Sub(leaf.NotBefore) / 3
	return &signingKey{key: key, chain: chain, report: rs, answers: answers, renewAt: leaf.NotAfter.Add(-third)}, nil
}

// decodeSigning reads the stored key and chain and checks that they are
// still good at now.
func (s *Service) decodeSigning(b []byte, now time.Time) (*signingKey, error) {
	var (
		key   *ecdsa.PrivateKey
		chain []*x509.Certificate
	)
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("stored signing key: %w", err)
			}
			key = k
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("stored signing certificate: %w", err)
			}
			chain = append(chain, c)
		}
	}
	if key == nil || len(chain) == 0 {
		return nil, errors.New("stored signing key or certificate missing")
	}
	if err := signerid.Verify(chain, s.roots, now); err != nil {
		return nil, fmt.Errorf("stored signing certificate: %w", err)
	}
	k, err := s.newSigningKey(key, chain)
	if err != nil {
		return nil, err
	}
	if !now.Before(k.renewAt) {
		return nil, fmt.Errorf("signing certificate expires at %s", chain[0].NotAfter.Format(time.RFC3339))
	}
	return k, nil
}
