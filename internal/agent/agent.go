// Package agent is the trust agent: it owns the node's TPM, answers the
// verifier's requests on trust-agent.<host-id>.<request> over a NATS
// connection it dialled out, and raises boot and IMA-change events so that the
// verifier attests at once instead of waiting for its next poll.
package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
)

// TPM is what the agent needs of the node's TPM.
type TPM interface {
	Quote(nonce []byte, pcrs []int, banks []string) (*evidence.QuoteResponse, error)
	Info() (evidence.TPMInfo, error)
	ResetCount() (uint32, error)
	KeyInfo() (evidence.AKInfo, error)
	ActivateCredential(credentialBlob, encryptedSecret []byte) ([]byte, error)
}

// Measurer is what the agent needs of the node's logs and facts.
type Measurer interface {
	EventLog() ([]byte, error)
	// IMALog returns the IMA lines from entry offset on, the offset used and
	// the total number of entries.
	IMALog(offset int) (lines string, offsetUsed, total int, err error)
	IMAEntryCount() (int, error)
	HostInfo(ctx context.Context) (evidence.HostInfo, error)
	// MeasureLog returns systemd's userspace TPM measurement log, or an
	// error wrapping measure.ErrNoMeasureLog when the node has none.
	MeasureLog() ([]byte, error)
}

// Config configures an Agent.
type Config struct {
	// HostID is the host's id on the bus (default: the SMBIOS system UUID).
	HostID string
	// NodeName is the Kubernetes Node the agent runs on, reported in the
	// host facts (evidence.HostInfo.NodeName); empty outside Kubernetes.
	NodeName string
	// AgentVersion is reported in version replies and host info.
	AgentVersion string
	// IMAPollInterval is how often the IMA log length is checked (default 5s).
	IMAPollInterval time.Duration
	// IMADebounce coalesces IMA growth into one event (default 2s).
	IMADebounce time.Duration
	// OnConnect, when set, is told of each bus connection the agent serves
	// on, with the grammar of the credentials it was made with: the first,
	// and each one a credential renewal makes (the key broker's secrets
	// keeper attaches there, secrets.go).
	OnConnect func(nc bus.Conn, g bus.AgentGrammar)
}

// Agent answers the verifier's requests for one host.
type Agent struct {
	cfg     Config
	tpm     TPM
	measure Measurer
	logger  *slog.Logger
	now     func() time.Time

	mu sync.Mutex // serializes TPM access
}

// Log field keys.
const (
	keyHost    = "host_id"
	keyRequest = "request"
	keyError   = "error"
	keyEntries = "ima_entries"
)

// New returns an agent for the host in cfg.
func New(cfg Config, t TPM, m Measurer, logger *slog.Logger) (*Agent, error) {
	if err := bus.ValidateHostID(cfg.HostID); err != nil {
		return nil, fmt.Errorf("agent host id: %w", err)
	}
	if err := evidence.ValidateNodeName(cfg.NodeName); cfg.NodeName != "" && err != nil {
		return nil, fmt.Errorf("agent node name: %w", err)
	}
	if cfg.IMAPollInterval <= 0 {
		cfg.IMAPollInterval = 5 * time.Second
	}
	if cfg.IMADebounce <= 0 {
		cfg.IMADebounce = 2 * time.Second
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "dev"
	}
	return &Agent{cfg: cfg, tpm: t, measure: m, logger: logger.With(keyHost, cfg.HostID), now: time.Now}, nil
}

// Run serves requests on nc until ctx ends. It publishes a boot event first and
// an IMA event whenever the IMA log grows. nc is the agent's own client
// (natsconn) or a nats.go connection through natsbus.Adapt; without the
// credentials it was made with, the agent's own subjects are in
// bus.GrammarSplit (RunRenewing takes the grammar of its credentials).
func (a *Agent) Run(ctx context.Context, nc bus.Conn) error {
	subject, err := bus.AgentRequests(a.cfg.HostID)
	if err != nil {
		return err
	}
	// Requests are answered even while Run stops: a request that reached
	// this agent gets its answer (see the drain below).
	serveCtx := context.WithoutCancel(ctx)
	sub, err := nc.Subscribe(subject, func(m *bus.Msg) { a.serve(serveCtx, nc, m) })
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	defer a.drain(sub)
	a.connected(nc, nil)

	if err := a.publishEvent(ctx, nc, bus.BootEvent, -1); err != nil {
		a.logger.Warn("boot event not published", keyError, err.Error())
	}
	a.watchIMA(ctx, nc)
	return nil
}

// drain stops taking requests and answers those already delivered, so a
// verifier never waits out its timeout on an agent that stopped cleanly.
func (a *Agent) drain(sub bus.Subscription) {
	if err := sub.Drain(); err != nil {
		a.logger.Warn("requests not drained", keyError, err.Error())
	}
}

// serve answers one request; the reply goes out on nc, the connection that
// brought the request.
func (a *Agent) serve(ctx context.Context, nc publisher, m *bus.Msg) {
	_, req, err := bus.ParseAgentRequestSubject(m.Subject)
	if err != nil && bus.IsAgentAnswer(m.Subject) {
		return // a renewal's or the key broker's answer: their own subscriptions take them
	}
	if err != nil {
		a.logger.Warn("request on an unexpected subject", keyError, err.Error())
		return
	}
	if m.Reply == "" {
		a.logger.Warn("request without a reply subject", keyRequest, string(req))
		return
	}
	if err := a.reply(nc, m.Reply, req, a.Handle(ctx, req, m.Data)); err != nil {
		a.logger.Warn("reply not sent", keyRequest, string(req), keyError, err.Error())
	}
}

// Handle answers one request. The returned value is the JSON reply; failures
// are carried in its Error field, so the verifier always gets an answer it can
// name.
func (a *Agent) Handle(ctx context.Context, req bus.Request, data []byte) any {
	switch req {
	case bus.QuoteRequest:
		var in evidence.QuoteRequest
		return a.answer(req, data, &in, func() (any, error) { return a.quote(ctx, in) },
			func(e *evidence.Error) any { return &evidence.QuoteResponse{Version: evidence.Version, Error: e} })
	case bus.HostInfoRequest:
		return a.answer(req, data, &evidence.HostInfoRequest{}, func() (any, error) { return a.HostInfo(ctx) },
			func(e *evidence.Error) any { return &evidence.HostInfo{Version: evidence.Version, Error: e} })
	case bus.AIKRequest:
		return a.answer(req, data, &evidence.AKRequest{}, func() (any, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			info, err := a.tpm.KeyInfo()
			info.Version = evidence.Version
			return &info, err
		}, func(e *evidence.Error) any { return &evidence.AKInfo{Version: evidence.Version, Error: e} })
	case bus.ActivateCredential:
		var in evidence.ActivateRequest
		return a.answer(req, data, &in, func() (any, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			secret, err := a.tpm.ActivateCredential(in.CredentialBlob, in.EncryptedSecret)
			return &evidence.ActivateResponse{Version: evidence.Version, Secret: secret}, err
		}, func(e *evidence.Error) any { return &evidence.ActivateResponse{Version: evidence.Version, Error: e} })
	case bus.VersionRequest:
		return a.answer(req, data, &evidence.VersionRequest{}, func() (any, error) {
			return &evidence.VersionInfo{Version: evidence.Version, AgentVersion: a.cfg.AgentVersion, GoVersion: runtime.Version()}, nil
		}, func(e *evidence.Error) any { return &evidence.VersionInfo{Version: evidence.Version, Error: e} })
	}
	return &evidence.VersionInfo{Version: evidence.Version, Error: &evidence.Error{Code: evidence.CodeBadRequest, Message: "unknown request " + string(req)}}
}

// answer decodes data into in and answers with what do returns. A request
// that does not decode or validate, and a failure of do, are answered with
// the reply errReply makes of the error.
func (a *Agent) answer(req bus.Request, data []byte, in evidence.Message, do func() (any, error), errReply func(*evidence.Error) any) any {
	if err := decodeRequest(data, in); err != nil {
		return errReply(err)
	}
	out, err := do()
	if err != nil {
		return errReply(a.fail(req, err))
	}
	return out
}

// decodeRequest decodes a request strictly; a request that does not decode or
// validate is answered with a BAD_REQUEST error and changes nothing.
func decodeRequest(data []byte, v evidence.Message) *evidence.Error {
	if err := evidence.Decode(data, v); err != nil {
		return &evidence.Error{Code: evidence.CodeBadRequest, Message: err.Error()}
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return &evidence.Error{Code: evidence.CodeBadRequest, Message: err.Error()}
		}
	}
	return nil
}

func (a *Agent) fail(req bus.Request, err error) *evidence.Error {
	a.logger.Warn("request failed", keyRequest, string(req), keyError, err.Error())
	code := evidence.CodeInternal
	var e *evidence.Error
	if errors.As(err, &e) {
		return e
	}
	return &evidence.Error{Code: code, Message: err.Error()}
}

// Evidence produces the quote and the logs that explain it. It is what a
// quote-request is answered with, and what `trust-agent evidence` prints.
//
// The host facts are collected first and bound to the quote: its
// qualifying data is evidence.QualifyingData(nonce, facts), so the
// verifier can tell that the facts it gets are the ones this TPM quoted.
func (a *Agent) Evidence(ctx context.Context, req evidence.QuoteRequest) (*evidence.QuoteResponse, error) {
	return a.collect(ctx, req, func(resp *evidence.QuoteResponse) error {
		lines, offset, total, err := a.measure.IMALog(req.IMAOffset)
		switch {
		case errors.Is(err, measure.ErrNoIMA):
			// A kernel without IMA: no entries. The verifier's replay of
			// the empty log must then explain the quoted PCR 10, so hiding
			// a real log this way fails attestation.
		case err != nil:
			return fmt.Errorf("ima log: %w", err)
		default:
			resp.IMALog, resp.IMAOffset, resp.IMAEntries = lines, offset, total
		}
		return nil
	})
}

// collect is Evidence with the IMA part left to ima, which it calls when
// the request asks for the IMA log.
func (a *Agent) collect(ctx context.Context, req evidence.QuoteRequest, ima func(*evidence.QuoteResponse) error) (*evidence.QuoteResponse, error) {
	if err := req.Validate(); err != nil {
		return nil, &evidence.Error{Code: evidence.CodeBadRequest, Message: err.Error()}
	}
	info, err := a.HostInfo(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	resp, err := a.tpm.Quote(evidence.QualifyingData(req.Nonce, &info), req.PCRs, req.Banks)
	a.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	resp.Version = evidence.Version
	resp.HostInfo = &info
	if req.EventLog {
		log, err := a.measure.EventLog()
		if err != nil {
			return nil, fmt.Errorf("event log: %w", err)
		}
		if held := req.EventLogDigest; len(held) == sha256.Size && sha256.Sum256(log) == [sha256.Size]byte(held) {
			// The verifier holds this log's appraisal: name it
			// instead of sending it again.
			resp.EventLogDigest = bytes.Clone(held)
		} else {
			resp.EventLog = log
		}
	}
	if req.IMAMeasureEnabled {
		if err := ima(resp); err != nil {
			return nil, err
		}
	}
	// Read after the quote: systemd extends PCR 15 before it appends the
	// record, so a log read now holds every record of an extend the quote
	// saw (a measurement racing the quote fails this replay only; the
	// next attestation settles it).
	switch mlog, err := a.measure.MeasureLog(); {
	case errors.Is(err, measure.ErrNoMeasureLog):
		// No systemd measurement this boot: disk encryption can only be
		// claimed.
	case err != nil:
		return nil, fmt.Errorf("measure log: %w", err)
	default:
		resp.MeasureLog = mlog
	}
	return resp, nil
}

// HostInfo collects the host facts, with the TPM's own description.
func (a *Agent) HostInfo(ctx context.Context) (evidence.HostInfo, error) {
	info, err := a.measure.HostInfo(ctx)
	if err != nil {
		return evidence.HostInfo{}, fmt.Errorf("host info: %w", err)
	}
	a.mu.Lock()
	tpmInfo, err := a.tpm.Info()
	a.mu.Unlock()
	if err != nil {
		return evidence.HostInfo{}, fmt.Errorf("tpm info: %w", err)
	}
	info.Version = evidence.Version
	info.NodeName = a.cfg.NodeName
	info.TPM = tpmInfo
	info.AgentVersion = a.cfg.AgentVersion
	return info, nil
}

// publishEvent publishes an event of this host; imaEntries < 0 means unknown.
func (a *Agent) publishEvent(ctx context.Context, nc publisher, t bus.EventType, imaEntries int) error {
	subject, err := bus.EventSubject(a.cfg.HostID, t)
	if err != nil {
		return err
	}
	ev := evidence.Event{Version: evidence.Version, Type: string(t), HostID: a.cfg.HostID, Time: a.now().UTC()}
	a.mu.Lock()
	rc, err := a.tpm.ResetCount()
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("read reset count: %w", err)
	}
	ev.ResetCount = rc
	if imaEntries >= 0 {
		ev.IMAEntries = imaEntries
	}
	if info, err := a.measure.HostInfo(ctx); err == nil {
		ev.BootID = info.BootID
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return nc.Publish(subject, body)
}

// watchIMA publishes an IMA event when the IMA log grows, at most once per
// debounce interval, until ctx ends.
func (a *Agent) watchIMA(ctx context.Context, nc publisher) {
	last, err := a.measure.IMAEntryCount()
	if err != nil {
		last = -1 // no IMA log: keep looking, it may appear (securityfs mounted late)
	}
	tick := time.NewTicker(a.cfg.IMAPollInterval)
	defer tick.Stop()
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n, err := a.measure.IMAEntryCount()
			if err != nil || n <= last {
				continue
			}
			last = n
			if pending == nil {
				pending = time.After(a.cfg.IMADebounce)
			}
		case <-pending:
			pending = nil
			if err := a.publishEvent(ctx, nc, bus.IMAEvent, last); err != nil {
				// natsconn does not buffer while it reconnects: try
				// again after the debounce interval.
				a.logger.Warn("ima event not published", keyError, err.Error())
				pending = time.After(a.cfg.IMADebounce)
				continue
			}
			a.logger.Info("ima log grew", keyEntries, last)
		}
	}
}
