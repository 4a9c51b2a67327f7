package eim

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"trustedcompute.io/tc/internal/eim/attestmgrv1"
	"trustedcompute.io/tc/internal/errtest"
	"trustedcompute.io/tc/internal/syncbuf"
	"trustedcompute.io/tc/internal/testca"
)

func TestClientUpdateSendsTheVerdict(t *testing.T) {
	tests := []struct {
		name, host, detail string
		status             Status
		want               call
	}{
		{
			name:   "a VERIFIED update arrives with the host GUID, the status and the bearer token",
			host:   testHost,
			status: StatusVerified,
			want: call{
				hostGUID:      testHost,
				status:        attestmgrv1.AttestationStatus_ATTESTATION_STATUS_VERIFIED,
				authorization: []string{"Bearer tok-1"},
			},
		},
		{
			name:   "a FAILED update carries its detail",
			host:   testHost2,
			status: StatusFailed,
			detail: "PCR 7 does not match the flavor",
			want: call{
				hostGUID:      testHost2,
				status:        attestmgrv1.AttestationStatus_ATTESTATION_STATUS_FAILED,
				detail:        "PCR 7 does not match the flavor",
				authorization: []string{"Bearer tok-1"},
			},
		},
		{
			name:   "an upper-case host GUID is sent as given",
			host:   strings.ToUpper(testHost),
			status: StatusVerified,
			want: call{
				hostGUID:      strings.ToUpper(testHost),
				status:        attestmgrv1.AttestationStatus_ATTESTATION_STATUS_VERIFIED,
				authorization: []string{"Bearer tok-1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eim := &fakeEIM{}
			c := newTestClient(t, serveEIM(t, eim, "tok-1"), nil)

			if err := c.Update(t.Context(), tt.host, tt.status, tt.detail); err != nil {
				t.Fatalf("Update: %v", err)
			}
			got := eim.recorded()
			if len(got) != 1 {
				t.Fatalf("server got %d calls, want 1: %+v", len(got), got)
			}
			assertCall(t, got[0], tt.want)
		})
	}
}

func assertCall(t *testing.T, got, want call) {
	t.Helper()
	if got.hostGUID != want.hostGUID || got.status != want.status || got.detail != want.detail ||
		strings.Join(got.authorization, "|") != strings.Join(want.authorization, "|") {
		t.Errorf("server got %+v, want %+v", got, want)
	}
}

func TestClientRereadsTheTokenFileOnEveryCall(t *testing.T) {
	eim := &fakeEIM{}
	cfg := serveEIM(t, eim, "first-token")
	c := newTestClient(t, cfg, nil)

	if err := c.Update(t.Context(), testHost, StatusVerified, ""); err != nil {
		t.Fatalf("first Update: %v", err)
	}
	if err := os.WriteFile(cfg.TokenFile, []byte("  second-token \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(t.Context(), testHost, StatusVerified, ""); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	got := eim.recorded()
	if len(got) != 2 {
		t.Fatalf("server got %d calls, want 2", len(got))
	}
	for i, want := range []string{"Bearer first-token", "Bearer second-token"} {
		if a := strings.Join(got[i].authorization, "|"); a != want {
			t.Errorf("call %d: authorization %q, want %q", i+1, a, want)
		}
	}
}

func TestClientRetriesOnlyTransientFailures(t *testing.T) {
	unavailable := grpcstatus.Error(codes.Unavailable, "eim restarting")
	tests := []struct {
		name      string
		answers   []error // answer to call n is answers[n-1]; OK beyond
		wantCalls int
		check     func(t *testing.T, err error)
	}{
		{name: "Unavailable twice then OK is one success after three calls", answers: []error{unavailable, unavailable}, wantCalls: 3, check: wantNoError},
		{name: "ResourceExhausted and Aborted are retried as well", answers: []error{grpcstatus.Error(codes.ResourceExhausted, "slow down"), grpcstatus.Error(codes.Aborted, "conflict")}, wantCalls: 3, check: wantNoError},
		{name: "DeadlineExceeded from the server is retried", answers: []error{grpcstatus.Error(codes.DeadlineExceeded, "database timeout")}, wantCalls: 2, check: wantNoError},
		{name: "Internal is not retried", answers: []error{grpcstatus.Error(codes.Internal, "bug")}, wantCalls: 1, check: wantRejected(codes.Internal)},
		{name: "InvalidArgument is not retried and the error says so", answers: []error{grpcstatus.Error(codes.InvalidArgument, "bad status")}, wantCalls: 1, check: wantRejected(codes.InvalidArgument)},
		{name: "NotFound for an unknown host is not retried", answers: []error{grpcstatus.Error(codes.NotFound, "no such instance")}, wantCalls: 1, check: wantRejected(codes.NotFound)},
		{name: "PermissionDenied is not retried", answers: []error{grpcstatus.Error(codes.PermissionDenied, "wrong tenant")}, wantCalls: 1, check: wantRejected(codes.PermissionDenied)},
		{name: "Unauthenticated is not retried", answers: []error{grpcstatus.Error(codes.Unauthenticated, "expired jwt")}, wantCalls: 1, check: wantRejected(codes.Unauthenticated)},
		{
			name:      "a server that stays Unavailable is given up after MaxAttempts",
			answers:   []error{unavailable, unavailable, unavailable, unavailable},
			wantCalls: 3,
			check: func(t *testing.T, err error) {
				t.Helper()
				ex, ok := errors.AsType[*ExhaustedError](err)
				if !ok {
					t.Fatalf("error %v (%T), want *ExhaustedError", err, err)
				}
				if ex.Attempts != 3 || grpcstatus.Code(ex.Last) != codes.Unavailable || ex.Ctx != nil {
					t.Errorf("ExhaustedError %+v, want 3 attempts ending Unavailable", ex)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eim := &fakeEIM{respond: func(_ context.Context, n int) error {
				if n <= len(tt.answers) {
					return tt.answers[n-1]
				}
				return nil
			}}
			c := newTestClient(t, serveEIM(t, eim, "tok"), nil)

			err := c.Update(t.Context(), testHost, StatusFailed, "bad PCR 0")
			tt.check(t, err)
			if got := len(eim.recorded()); got != tt.wantCalls {
				t.Errorf("server got %d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

func wantNoError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func wantRejected(code codes.Code) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		rej, ok := errors.AsType[*RejectedError](err)
		if !ok {
			t.Fatalf("error %v (%T), want *RejectedError", err, err)
		}
		if rej.Code != code || rej.Attempts != 1 || rej.HostGUID != testHost {
			t.Errorf("RejectedError %+v, want code %s after 1 attempt for %s", rej, code, testHost)
		}
	}
}

func TestClientStopsWhenItsCallerCancels(t *testing.T) {
	started := make(chan struct{}, 1)
	eim := &fakeEIM{respond: func(ctx context.Context, _ int) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	c := newTestClient(t, serveEIM(t, eim, "tok"), nil)

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	err := c.Update(ctx, testHost, StatusVerified, "")
	if _, ok := errors.AsType[*ExhaustedError](err); !ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v (%T), want *ExhaustedError that is context.Canceled", err, err)
	}
	if got := len(eim.recorded()); got != 1 {
		t.Errorf("server got %d calls, want 1", got)
	}
}

func TestClientRetriesAnAttemptThatTimesOut(t *testing.T) {
	eim := &fakeEIM{respond: func(ctx context.Context, n int) error {
		if n == 1 {
			<-ctx.Done() // the client's per-attempt deadline
			return ctx.Err()
		}
		return nil
	}}
	cfg := serveEIM(t, eim, "tok")
	cfg.Timeout = 200 * time.Millisecond
	updateVerified(t, newTestClient(t, cfg, nil), eim, 2)
}

func TestClientStopsRetryingWhenTheContextEnds(t *testing.T) {
	eim := &fakeEIM{respond: func(context.Context, int) error { return grpcstatus.Error(codes.Unavailable, "down") }}
	cfg := serveEIM(t, eim, "tok")
	cfg.MaxAttempts = 1000
	cfg.BackoffBase, cfg.BackoffCap = 20*time.Millisecond, 20*time.Millisecond
	c := newTestClient(t, cfg, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := c.Update(ctx, testHost, StatusVerified, "")
	ex, ok := errors.AsType[*ExhaustedError](err)
	if !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v (%T), want *ExhaustedError that is context.DeadlineExceeded", err, err)
	}
	if ex.Attempts >= cfg.MaxAttempts {
		t.Errorf("made %d attempts, want far fewer than %d", ex.Attempts, cfg.MaxAttempts)
	}
}

func TestClientRefusesAServerItCannotTrust(t *testing.T) {
	tests := []struct {
		name                  string
		server                func(t *testing.T, clientCA *testca.CA) *tls.Config
		serverName, wantInErr string
	}{
		{
			name: "a server certificate from another CA is refused",
			server: func(t *testing.T, _ *testca.CA) *tls.Config {
				return tls13(t, newTestCA(t))
			},
			wantInErr: "certificate signed by unknown authority",
		},
		{
			name: "a server that speaks only TLS 1.2 is refused",
			server: func(t *testing.T, ca *testca.CA) *tls.Config {
				cfg := tls13(t, ca)
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				return cfg
			},
			wantInErr: "protocol version",
		},
		{
			name: "a server certificate for another name than ServerName is refused",
			server: func(t *testing.T, ca *testca.CA) *tls.Config {
				return tls13(t, ca)
			},
			serverName: "other.test",
			wantInErr:  "other.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			eim := &fakeEIM{}
			addr := serve(t, eim, tt.server(t, ca))
			cfg := clientConfig(t, addr, ca, "tok")
			cfg.MaxAttempts = 2
			cfg.ServerName = tt.serverName
			c := newTestClient(t, cfg, nil)

			err := c.Update(t.Context(), testHost, StatusVerified, "")
			if err == nil {
				t.Fatal("Update succeeded, want a TLS failure")
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
			if got := eim.recorded(); len(got) != 0 {
				t.Errorf("server got %d calls, want none", len(got))
			}
		})
	}
}

func TestClientAcceptsTheServerNameOverride(t *testing.T) {
	eim := &fakeEIM{}
	cfg := serveEIM(t, eim, "tok")
	cfg.ServerName = "eim.test" // only in the certificate's DNS names
	updateVerified(t, newTestClient(t, cfg, nil), eim, 1)
}

// updateVerified sends a VERIFIED update of testHost through c, which must
// succeed after wantCalls calls to eim.
func updateVerified(t *testing.T, c *Client, eim *fakeEIM, wantCalls int) {
	t.Helper()
	if err := c.Update(t.Context(), testHost, StatusVerified, ""); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := len(eim.recorded()); got != wantCalls {
		t.Errorf("server got %d calls, want %d", got, wantCalls)
	}
}

func TestClientRefusesAnInvalidUpdateWithoutCalling(t *testing.T) {
	tests := []struct {
		name, host        string
		status            Status
		detail, wantField string
	}{
		{"an empty host GUID is refused", "", StatusVerified, "", "host_guid"},
		{"a host GUID longer than 36 bytes is refused", testHost + "0", StatusVerified, "", "host_guid"},
		{"a host GUID in braces is refused", "{" + testHost[:34] + "}", StatusVerified, "", "host_guid"},
		{"a host GUID with a non-hex digit is refused", "g" + testHost[1:], StatusVerified, "", "host_guid"},
		{"a host GUID with a misplaced dash is refused", "4c4c454-40042-3510-8052-b4c04f4e4a32", StatusVerified, "", "host_guid"},
		{"the unspecified status is refused", testHost, Status(0), "", "attestation_status"},
		{"an unknown status is refused", testHost, Status(3), "", "attestation_status"},
		{"a detail longer than MaxDetailBytes is refused", testHost, StatusFailed, strings.Repeat("x", MaxDetailBytes+1), "attestation_status_detail"},
		{"a detail that is not UTF-8 is refused", testHost, StatusFailed, "bad \xff byte", "attestation_status_detail"},
		{"a FAILED status without a detail is refused", testHost, StatusFailed, " ", "attestation_status_detail"},
	}
	eim := &fakeEIM{}
	c := newTestClient(t, serveEIM(t, eim, "tok"), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Update(t.Context(), tt.host, tt.status, tt.detail)
			inv, ok := errors.AsType[*InvalidUpdateError](err)
			if !ok {
				t.Fatalf("error %v (%T), want *InvalidUpdateError", err, err)
			}
			if inv.Field != tt.wantField {
				t.Errorf("field %q, want %q", inv.Field, tt.wantField)
			}
		})
	}
	if got := len(eim.recorded()); got != 0 {
		t.Errorf("server got %d calls, want none", got)
	}
}

func TestClientReportsAnUnusableTokenFile(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
		want  error
	}{
		{
			name:  "a missing token file is a token error",
			write: func(t *testing.T, path string) { _ = os.Remove(path) },
			want:  os.ErrNotExist,
		},
		{
			name:  "a token file of white space only is a token error",
			write: func(t *testing.T, path string) { _ = os.WriteFile(path, []byte(" \n\t\n"), 0o600) },
			want:  errEmptyToken,
		},
		{
			name:  "a token with a line break inside is a token error",
			write: func(t *testing.T, path string) { _ = os.WriteFile(path, []byte("secret-a\nsecret-b"), 0o600) },
			want:  errTokenBadByte,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eim := &fakeEIM{}
			cfg := serveEIM(t, eim, "tok")
			c := newTestClient(t, cfg, nil)
			tt.write(t, cfg.TokenFile)

			err := c.Update(t.Context(), testHost, StatusVerified, "")
			if _, ok := errors.AsType[*TokenError](err); !ok || !errors.Is(err, tt.want) {
				t.Fatalf("error %v (%T), want *TokenError wrapping %v", err, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the token", err)
			}
			if got := len(eim.recorded()); got != 0 {
				t.Errorf("server got %d calls, want none", got)
			}
		})
	}
}

func TestClientNeverLogsTheToken(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.very-secret-payload.sig"
	eim := &fakeEIM{respond: func(_ context.Context, n int) error {
		if n == 1 {
			return grpcstatus.Error(codes.Unavailable, "restarting")
		}
		return grpcstatus.Error(codes.Unauthenticated, "bad token")
	}}
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestClient(t, serveEIM(t, eim, token), logger)

	err := c.Update(t.Context(), testHost, StatusVerified, "")
	if _, ok := errors.AsType[*RejectedError](err); !ok {
		t.Fatalf("error %v, want *RejectedError", err)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Fatalf("no retry logged, the check below would prove nothing; logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "very-secret") || strings.Contains(err.Error(), "very-secret") {
		t.Errorf("the token leaked; logs:\n%s\nerror: %v", logs.String(), err)
	}
}

func TestNewWithoutAddressIsTheNoopSink(t *testing.T) {
	sink, err := New(Config{CAFile: "/nonexistent"}, discardLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, ok := sink.(Noop); !ok {
		t.Fatalf("New returned %T, want Noop", sink)
	}
	if err := sink.Update(t.Context(), testHost, StatusVerified, ""); err != nil {
		t.Errorf("Noop.Update of a valid verdict: %v", err)
	}
	if _, ok := errors.AsType[*InvalidUpdateError](sink.Update(t.Context(), "not-a-uuid", StatusVerified, "")); !ok {
		t.Error("Noop.Update accepted a bad host GUID")
	}
	if err := sink.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestNewWithAddressIsAClient(t *testing.T) {
	ca := newTestCA(t)
	sink, err := New(clientConfig(t, "127.0.0.1:1", ca, "tok"), discardLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() { _ = sink.Close() }()
	if _, ok := sink.(*Client); !ok {
		t.Fatalf("New returned %T, want *Client", sink)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // each must appear in the error; none means valid
	}{
		{
			name: "a configuration without an address is valid whatever else it holds",
			cfg:  Config{MaxAttempts: -1},
		},
		{
			name: "a complete configuration is valid",
			cfg:  Config{Address: "eim.example:443", CAFile: "ca.pem", TokenFile: "token"},
		},
		{
			name: "an address without a CA file and token file names both",
			cfg:  Config{Address: "eim.example:443"},
			want: []string{"caFile", "tokenFile"},
		},
		{
			name: "an address without a port is refused",
			cfg:  Config{Address: "eim.example", CAFile: "ca.pem", TokenFile: "token"},
			want: []string{"host:port"},
		},
		{
			name: "negative numbers and a base above the cap are all reported",
			cfg: Config{Address: "eim.example:443", CAFile: "ca.pem", TokenFile: "token",
				Timeout: -1, MaxAttempts: -1, BackoffBase: time.Second, BackoffCap: time.Millisecond},
			want: []string{"timeout", "maxAttempts", "exceeds backoffCap"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errtest.Want(t, tt.cfg.Validate(), tt.want...)
		})
	}
}

func TestNewClientRefusesACAFileWithoutCertificates(t *testing.T) {
	cfg := Config{
		Address:   "127.0.0.1:1",
		CAFile:    writeFile(t, t.TempDir(), "ca.pem", []byte("not pem")),
		TokenFile: "token",
	}
	if _, err := NewClient(cfg, discardLogger()); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("NewClient: %v, want an error about the CA file", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	const base, ceiling = 100 * time.Millisecond, time.Second
	tests := []struct {
		name    string
		attempt int
		randN   func(int64) int64
		want    time.Duration
	}{
		{"the first wait is at least half the base", 1, lowest, 50 * time.Millisecond},
		{"the first wait is at most the base", 1, highest, 100 * time.Millisecond},
		{"the wait doubles with each attempt", 3, highest, 400 * time.Millisecond},
		{"the wait stops growing at the cap", 10, highest, time.Second},
		{"the capped wait still has jitter", 10, lowest, 500 * time.Millisecond},
		{"a huge attempt number does not overflow", 1 << 20, highest, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoffDelay(tt.attempt, base, ceiling, tt.randN); got != tt.want {
				t.Errorf("backoffDelay(%d) = %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestTruncateDetail(t *testing.T) {
	tests := []struct {
		name, in string
		want     func(string) bool
	}{
		{"a short detail is kept as it is", "PCR 7 mismatch", func(s string) bool { return s == "PCR 7 mismatch" }},
		{"a long detail is cut to MaxDetailBytes", strings.Repeat("x", 5000), func(s string) bool {
			return len(s) <= MaxDetailBytes && strings.HasSuffix(s, "…") && validateUpdate(testHost, StatusFailed, s) == nil
		}},
		{"a cut never splits a rune", strings.Repeat("é", 1000), func(s string) bool {
			return len(s) <= MaxDetailBytes && validateUpdate(testHost, StatusFailed, s) == nil
		}},
		{"invalid UTF-8 is replaced", "bad \xff byte", func(s string) bool { return s == "bad \uFFFD byte" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TruncateDetail(tt.in); !tt.want(got) {
				t.Errorf("TruncateDetail gave %q (%d bytes)", truncate(got, 80), len(got))
			}
		})
	}
}
