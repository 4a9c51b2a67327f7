package hvs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/store"
)

// A release before the verifier signing CA stored an HVS key certified by
// the Signing CA, which CSR signing also serves. HVS must not go on signing
// with it: its reports and flavors would not verify, and the certificate
// is indistinguishable from one an administrator obtained. HVS replaces it
// with the verifier's own signing identity, under the same root.
func TestAStoredSigningKeyOutsideTheVerifierSigningCAIsReplaced(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ca, err := cms.New(t.Context(), cms.Config{NotFound: store.ErrNotFound, Conflict: store.ErrConflict}, st, discard)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := ca.IssueSigning(&key.PublicKey, signerid.LeafCommonName, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), cms.EncodeChainPEM(legacy)...)
	if err := st.PutSecret(t.Context(), signingSecret, b); err != nil {
		t.Fatal(err)
	}

	svc, err := New(t.Context(), Config{}, Deps{Store: st, Agent: newFakeAgent(), Enroller: newFakeEnroller(newFakeAgent()), CA: ca}, discard)
	if err != nil {
		t.Fatal(err)
	}
	k, err := svc.signingKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if k.key.Equal(key) || k.chain[0].Equal(legacy[0]) {
		t.Fatal("HVS kept the signing key certified by the Signing CA")
	}
	if err := signerid.Verify(k.chain, ca.RootPool(), time.Now()); err != nil {
		t.Fatalf("the replacement is not the verifier's signing identity: %v", err)
	}
}
