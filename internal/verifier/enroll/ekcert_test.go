package enroll

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"
	"trustedcompute.io/tc/internal/testca"
)

// ekCA is a CA made for the test that issues EK-shaped certificates.
type ekCA struct {
	*testca.CA
	pool *x509.CertPool
}

func newEKCA(t testing.TB) ekCA {
	ca := testca.New(t, "test EK CA")
	return ekCA{CA: ca, pool: ca.Pool()}
}

// issue makes an EK-shaped certificate (empty subject, tcg-kp-EKCertificate)
// with the given extra extensions.
func (ca ekCA) issue(t testing.TB, exts ...pkix.Extension) []byte {
	t.Helper()
	der, _ := ca.Issue(t, &x509.Certificate{
		KeyUsage:           x509.KeyUsageKeyAgreement,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{OIDEKCertificate},
		ExtraExtensions:    exts,
	})
	return der
}

// tpmSAN is a subject alternative name as TPM EK certificates carry it: one
// directoryName with the TCG TPM manufacturer, model and version attributes.
func tpmSAN(t testing.TB, critical bool) pkix.Extension {
	t.Helper()
	rdn := pkix.RDNSequence{
		{{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 1}, Value: "id:00001014"}},
		{{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 2}, Value: "swtpm"}},
		{{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 3}, Value: "id:20191023"}},
	}
	name, err := asn1.Marshal(rdn)
	if err != nil {
		t.Fatal(err)
	}
	return sanExtension(t, critical, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDirectoryName, IsCompound: true, Bytes: name})
}

func sanExtension(t testing.TB, critical bool, names ...asn1.RawValue) pkix.Extension {
	t.Helper()
	value, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidSubjectAltName, Critical: critical, Value: value}
}

func TestVerifyEKCertificate(t *testing.T) {
	ca := newEKCA(t)
	registeredID := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 8, Bytes: []byte{0x2a, 0x03}} // registeredID 1.2.3
	tests := []struct {
		name    string
		der     func(t *testing.T) []byte
		roots   *x509.CertPool
		wantErr string
	}{
		{name: "a certificate with a critical tpm directory name verifies",
			der: func(t *testing.T) []byte { return ca.issue(t, tpmSAN(t, true)) }, roots: ca.pool},
		{name: "a certificate with a non-critical tpm directory name verifies",
			der: func(t *testing.T) []byte { return ca.issue(t, tpmSAN(t, false)) }, roots: ca.pool},
		{name: "a critical alternative name that is no directory name is refused",
			der: func(t *testing.T) []byte { return ca.issue(t, sanExtension(t, true, registeredID)) }, roots: ca.pool,
			wantErr: "not a tpm directory name"},
		{name: "another unknown critical extension is still refused",
			der: func(t *testing.T) []byte {
				return ca.issue(t, tpmSAN(t, true), pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}})
			}, roots: ca.pool, wantErr: "unhandled critical extension"},
		{name: "a certificate from another ca is refused",
			der: func(t *testing.T) []byte { return ca.issue(t, tpmSAN(t, true)) }, roots: newEKCA(t).pool,
			wantErr: "unknown authority"},
		{name: "without trusted cas every certificate is refused",
			der: func(t *testing.T) []byte { return ca.issue(t, tpmSAN(t, true)) }, wantErr: "no trusted ek ca"},
		{name: "bytes that are no certificate are refused",
			der: func(*testing.T) []byte { return []byte("not a certificate") }, roots: ca.pool, wantErr: "parse ek certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := VerifyEKCertificate(tt.der(t), tt.roots, nil, time.Now())
			if tt.wantErr == "" {
				if err != nil || cert == nil {
					t.Fatalf("VerifyEKCertificate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("VerifyEKCertificate err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("an expired certificate is refused", func(t *testing.T) {
		_, err := VerifyEKCertificate(ca.issue(t, tpmSAN(t, true)), ca.pool, nil, time.Now().Add(2*time.Hour))
		var invalid x509.CertificateInvalidError
		if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
			t.Fatalf("err = %v, want an expired certificate", err)
		}
	})
}

func TestDirectoryNamesOnly(t *testing.T) {
	dn := tpmSAN(t, true).Value
	dns := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("tpm.example")}
	mixed := sanExtension(t, true, asn1.RawValue{FullBytes: mustInner(t, dn)}, dns).Value
	tests := []struct {
		name  string
		value []byte
		want  bool
	}{
		{"one directory name is accepted", dn, true},
		{"a directory name beside a dns name is not", mixed, false},
		{"an empty sequence is not", []byte{0x30, 0x00}, false},
		{"trailing bytes are not", append(append([]byte(nil), dn...), 0), false},
		{"a truncated value is not", dn[:len(dn)-1], false},
		{"a directory name that holds no name is not", []byte{0x30, 0x03, 0xa4, 0x01, 0x05}, false},
		{"nothing is not", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := directoryNamesOnly(tt.value); got != tt.want {
				t.Fatalf("directoryNamesOnly = %v, want %v", got, tt.want)
			}
		})
	}
}

// mustInner returns the first element inside a DER SEQUENCE.
func mustInner(t *testing.T, seq []byte) []byte {
	t.Helper()
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(seq, &outer); err != nil {
		t.Fatal(err)
	}
	var inner asn1.RawValue
	if _, err := asn1.Unmarshal(outer.Bytes, &inner); err != nil {
		t.Fatal(err)
	}
	return inner.FullBytes
}

// FuzzVerifyEKCertificate feeds arbitrary bytes, as an agent may send them,
// to the EK certificate check: it must never panic nor accept them.
func FuzzVerifyEKCertificate(f *testing.F) {
	ca := newEKCA(f)
	f.Add(ca.issue(f, tpmSAN(f, true)))
	f.Add(tpmSAN(f, true).Value)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		_ = directoryNamesOnly(der)
		cert, err := VerifyEKCertificate(der, ca.pool, nil, time.Now())
		if err == nil && cert.CheckSignatureFrom(ca.Cert) != nil {
			t.Fatal("accepted a certificate the CA did not sign")
		}
	})
}
