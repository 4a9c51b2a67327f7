package testca_test

import (
	"crypto/x509"
	"testing"

	"trustedcompute.io/tc/internal/testca"
)

func TestServerCertVerifiesUnderItsCAAloneForItsNames(t *testing.T) {
	ca := testca.New(t, "test ca")
	cert := ca.ServerCert(t, "server.test")
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: "server.test"}
	if _, err := leaf.Verify(opts); err != nil {
		t.Fatalf("under its own CA: %v", err)
	}
	opts.Roots = testca.New(t, "other ca").Pool()
	if _, err := leaf.Verify(opts); err == nil {
		t.Fatal("verified under another CA")
	}
	opts = x509.VerifyOptions{Roots: ca.Pool(), DNSName: "other.test"}
	if _, err := leaf.Verify(opts); err == nil {
		t.Fatal("verified for a name it does not hold")
	}
}

func TestIssueGivesEachCertificateItsOwnSerial(t *testing.T) {
	ca := testca.New(t, "test ca")
	a, _ := ca.Issue(t, &x509.Certificate{})
	b, _ := ca.Issue(t, &x509.Certificate{})
	first, err := x509.ParseCertificate(a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := x509.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 || first.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Fatalf("serials %v, %v under a CA of serial %v", first.SerialNumber, second.SerialNumber, ca.Cert.SerialNumber)
	}
}

func TestCSRIsSignedByItsKey(t *testing.T) {
	csr := testca.CSR(t, testca.NewKey(t), "leaf")
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "leaf" {
		t.Fatalf("subject %q", csr.Subject.CommonName)
	}
}
