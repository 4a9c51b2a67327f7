package eim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcstatus "google.golang.org/grpc/status"

	"trustedcompute.io/tc/internal/eim/attestmgrv1"
)

// Log field keys.
const (
	logKeyHostGUID = "host_guid"
	logKeyStatus   = "attestation_status"
	logKeyAttempt  = "attempt"
	logKeyCode     = "code"
	logKeyWait     = "wait"
	logKeyError    = "error"
	logKeyAddress  = "address"
)

// New returns the sink cfg describes: Noop when no address is configured,
// else a *Client.
func New(cfg Config, logger *slog.Logger) (Sink, error) {
	if !cfg.Enabled() {
		logger.Info("eim sink off: no address configured")
		return Noop{}, nil
	}
	return NewClient(cfg, logger)
}

// Client sends attestation verdicts to the EIM. It is safe for concurrent
// use. The connection is made lazily, on the first update.
type Client struct {
	cfg  Config
	log  *slog.Logger
	conn *grpc.ClientConn
	rpc  attestmgrv1.AttestationStatusMgrServiceClient
	// randN returns a number in [0, n); it jitters the backoff.
	randN func(n int64) int64
}

// NewClient returns a client for the EIM at cfg.Address, which must be set.
// It reads the CA file now and the token file on every call.
func NewClient(cfg Config, logger *slog.Logger) (*Client, error) {
	if !cfg.Enabled() {
		return nil, errors.New("eim address is not configured")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("eim ca file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("eim ca file %s: no PEM certificate found", cfg.CAFile)
	}
	tlsConfig := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: cfg.ServerName, // empty: the host of Address
	}
	conn, err := grpc.NewClient(cfg.Address,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
		// No retry or load-balancing policy from DNS: Update retries itself.
		grpc.WithDisableServiceConfig(),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  cfg.BackoffBase,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   cfg.BackoffCap,
			},
			MinConnectTimeout: cfg.Timeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("eim client for %s: %w", cfg.Address, err)
	}
	return &Client{
		cfg:   cfg,
		log:   logger,
		conn:  conn,
		rpc:   attestmgrv1.NewAttestationStatusMgrServiceClient(conn),
		randN: rand.Int64N,
	}, nil
}

// Close closes the connection to the EIM.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close eim connection: %w", err)
	}
	return nil
}

// Update sets the attestation status of the instance whose SMBIOS system
// UUID is hostGUID. detail explains a FAILED status (required then) and may
// be empty for VERIFIED. Transient failures are retried with exponential
// backoff and jitter until Config.MaxAttempts or the end of ctx; see the
// package documentation for the errors.
func (c *Client) Update(ctx context.Context, hostGUID string, status Status, detail string) error {
	if err := validateUpdate(hostGUID, status, detail); err != nil {
		return err
	}
	req := &attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest{
		HostGuid:                hostGUID,
		AttestationStatus:       status.proto(),
		AttestationStatusDetail: detail,
	}
	for attempt := 1; ; attempt++ {
		err := c.call(ctx, req)
		if err == nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "eim status updated",
				slog.String(logKeyHostGUID, hostGUID), slog.String(logKeyStatus, status.String()), slog.Int(logKeyAttempt, attempt))
			return nil
		}
		if _, ok := errors.AsType[*TokenError](err); ok {
			return err
		}
		if ctx.Err() != nil {
			return &ExhaustedError{HostGUID: hostGUID, Attempts: attempt, Last: err, Ctx: ctx.Err()}
		}
		st := grpcstatus.Convert(err)
		if !retryable(st.Code()) {
			return &RejectedError{HostGUID: hostGUID, Code: st.Code(), Message: st.Message(), Attempts: attempt}
		}
		if attempt >= c.cfg.MaxAttempts {
			return &ExhaustedError{HostGUID: hostGUID, Attempts: attempt, Last: err}
		}
		wait := backoffDelay(attempt, c.cfg.BackoffBase, c.cfg.BackoffCap, c.randN)
		c.log.LogAttrs(ctx, slog.LevelDebug, "eim update failed, retrying",
			slog.String(logKeyHostGUID, hostGUID), slog.Int(logKeyAttempt, attempt),
			slog.String(logKeyCode, st.Code().String()), slog.Duration(logKeyWait, wait), slog.Any(logKeyError, err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &ExhaustedError{HostGUID: hostGUID, Attempts: attempt, Last: err, Ctx: ctx.Err()}
		case <-t.C:
		}
	}
}

// call makes one attempt with a freshly read token.
func (c *Client) call(ctx context.Context, req *attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest) error {
	token, err := readToken(c.cfg.TokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	_, err = c.rpc.UpdateInstanceAttestationStatusByHostGuid(ctx, req, grpc.PerRPCCredentials(bearer(token)))
	return err
}

// retryable reports whether an attempt that failed with code may succeed
// when repeated.
func retryable(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	default:
		return false
	}
}

// backoffDelay is the wait after failed attempt number attempt (1-based):
// base·2^(attempt-1) capped at ceiling, half of it fixed and half random
// ("equal jitter"), so that retries of many hosts spread out but never
// come sooner than half the nominal delay.
func backoffDelay(attempt int, base, ceiling time.Duration, randN func(int64) int64) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	if half <= 0 {
		return d
	}
	return d - half + time.Duration(randN(int64(half)+1))
}

// bearer is a per-RPC credential that puts the token in the authorization
// metadata and is only ever sent over a protected transport.
type bearer string

func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
		return nil, fmt.Errorf("refusing to send the eim bearer token: %w", err)
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }
