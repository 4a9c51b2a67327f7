package report

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIMAPolicySignatures(t *testing.T) {
	ca, s := newP256Signer(t)
	statement := []byte(`{"name":"kata","version":2,"digest":"sha256:00"}`)
	token, err := s.SignIMAPolicy(statement)
	if err != nil {
		t.Fatalf("SignIMAPolicy: %v", err)
	}
	got, err := VerifyIMAPolicy(token, ca.RootPool(), t0.Add(time.Minute))
	if err != nil || string(got) != string(statement) {
		t.Fatalf("VerifyIMAPolicy = %s, %v; want the statement", got, err)
	}
	rep, err := s.Sign(trustedReport())
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	tests := []struct {
		name  string
		check func() error
		want  error
	}{
		{"a report is not an ima policy signature", func() error {
			_, err := VerifyIMAPolicy(rep, ca.RootPool(), t0.Add(time.Minute))
			return err
		}, ErrMalformed},
		{"an ima policy signature is not a report", func() error {
			_, err := Verify(token, ca.RootPool(), t0.Add(time.Minute))
			return err
		}, ErrMalformed},
		{"a changed statement does not verify", func() error {
			parts := strings.Split(token, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"name":"kata","version":2,"digest":"sha256:ff"}`))
			forged := strings.Join(parts, ".")
			_, err := VerifyIMAPolicy(forged, ca.RootPool(), t0.Add(time.Minute))
			return err
		}, ErrSignatureInvalid},
		{"a signature under another root is untrusted", func() error {
			_, err := VerifyIMAPolicy(token, newCA(t).RootPool(), t0.Add(time.Minute))
			return err
		}, ErrCertificateUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}
