package hvs

import (
	"context"
	"fmt"
)

// SignSecretAnswer signs the payload of a key broker answer to an agent (a
// bus.SignedSecretAnswer) with HVS's signing key, as a compact JWS of type
// report.TypeSecretAnswer whose x5c chain is the verifier's signing
// identity: agents take only answers that verify under their CMS roots.
func (s *Service) SignSecretAnswer(ctx context.Context, payload []byte) (string, error) {
	k, err := s.signingKey(ctx)
	if err != nil {
		return "", err
	}
	tok, err := k.answers.SignSecretAnswer(payload)
	if err != nil {
		return "", fmt.Errorf("sign secret answer: %w", err)
	}
	return tok, nil
}
