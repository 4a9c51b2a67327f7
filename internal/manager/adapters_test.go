package manager_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
)

func TestAHostWithoutReportsHasNoLatestReportRatherThanAnError(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case hvsclient.PathToken:
			claims := fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix())
			_, _ = fmt.Fprintf(w, "h.%s.s", base64.RawURLEncoding.EncodeToString([]byte(claims)))
		case hvsclient.PathReports:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"reports":[]}`))
		default:
			http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c, err := hvsclient.New(srv.URL, roots, hvsclient.Credentials{Username: "u", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	v := manager.HVSVerifier{Client: c, Log: slog.New(slog.DiscardHandler)}
	r, err := v.LatestReport(context.Background(), "host-1")
	if r != nil || err != nil {
		t.Fatalf("LatestReport = %v, %v; want nil, nil", r, err)
	}
	if _, err := v.RegisterHost(context.Background(), "edge-1", "host-1"); err == nil {
		t.Fatal("a 404 on registration was not an error")
	}
}
