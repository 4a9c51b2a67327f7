// Package agentclient is the verifier's client for trust agents: it sends a
// request to trust-agent.<host-id>.<request> over NATS request/reply and
// decodes the agent's reply strictly.
//
// Callers tell the failures apart with errors.Is and errors.As:
//
//	ErrNoResponders  no agent listens for the host (host offline; HVS: CONNECTION_FAILURE)
//	ErrTimeout       the agent did not answer in time (HVS: CONNECTION_TIMEOUT)
//	ErrBadReply      the reply does not decode as the expected message
//	*AgentError      the agent answered with an error of its own (e.g. AIK_NOT_PROVISIONED)
//
// The first three come wrapped in a *RequestError that names the host and the
// request.
package agentclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
)

// DefaultTimeout is the time an agent has to answer when New is given 0.
// A quote with the event log and a long IMA log takes a slow TPM a few seconds.
const DefaultTimeout = 30 * time.Second

// Kinds of transport failure, wrapped by *RequestError.
var (
	// ErrNoResponders reports that no agent is subscribed for the host.
	ErrNoResponders = errors.New("no trust agent listens for the host")
	// ErrTimeout reports that the agent did not answer within the timeout.
	ErrTimeout = errors.New("trust agent did not answer in time")
	// ErrBadReply reports a reply that does not decode as the expected message.
	ErrBadReply = errors.New("trust agent sent a malformed reply")
)

// RequestError is a failed request to an agent. It wraps its Kind (one of
// ErrNoResponders, ErrTimeout, ErrBadReply, or nil for other transport
// failures such as a closed connection) and the underlying cause.
type RequestError struct {
	HostID  string
	Request bus.Request
	Kind    error
	Err     error
}

func (e *RequestError) Error() string {
	msg := fmt.Sprintf("%s to host %q", e.Request, e.HostID)
	if e.Kind != nil {
		msg += ": " + e.Kind.Error()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the kind and the cause, so errors.Is matches both
// ErrTimeout and, say, context.DeadlineExceeded.
func (e *RequestError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// AgentError is an error the agent reported in its reply (evidence.Error).
type AgentError struct {
	HostID  string
	Request bus.Request
	// Code is one of the evidence.Code* constants (or a code of a newer agent).
	Code    string
	Message string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("%s to host %q: agent answered %s: %s", e.Request, e.HostID, e.Code, e.Message)
}

// Client sends requests to trust agents. It is safe for concurrent use.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
}

// New returns a client that sends over nc (a connection with service
// credentials) and waits at most timeout for each reply (DefaultTimeout when
// timeout is 0 or less). A shorter deadline on the request's context wins.
func New(nc *nats.Conn, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{nc: nc, timeout: timeout}
}

// Quote asks the agent of hostID for a quote and the logs that explain it.
func (c *Client) Quote(ctx context.Context, hostID string, req evidence.QuoteRequest) (*evidence.QuoteResponse, error) {
	req.Version = cmp.Or(req.Version, evidence.Version)
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("%s to host %q: %w", bus.QuoteRequest, hostID, err)
	}
	return ask(ctx, c, hostID, bus.QuoteRequest, &req, func(r *evidence.QuoteResponse) *evidence.Error { return r.Error })
}

// HostInfo asks the agent of hostID for its host facts.
func (c *Client) HostInfo(ctx context.Context, hostID string) (*evidence.HostInfo, error) {
	req := evidence.HostInfoRequest{Version: evidence.Version}
	return ask(ctx, c, hostID, bus.HostInfoRequest, &req, func(r *evidence.HostInfo) *evidence.Error { return r.Error })
}

// AKInfo asks the agent of hostID for its AK and EK material.
func (c *Client) AKInfo(ctx context.Context, hostID string) (*evidence.AKInfo, error) {
	req := evidence.AKRequest{Version: evidence.Version}
	return ask(ctx, c, hostID, bus.AIKRequest, &req, func(r *evidence.AKInfo) *evidence.Error { return r.Error })
}

// Activate sends the agent of hostID a credential challenge and returns the
// secret its TPM recovered.
func (c *Client) Activate(ctx context.Context, hostID string, req evidence.ActivateRequest) (*evidence.ActivateResponse, error) {
	req.Version = cmp.Or(req.Version, evidence.Version)
	return ask(ctx, c, hostID, bus.ActivateCredential, &req, func(r *evidence.ActivateResponse) *evidence.Error { return r.Error })
}

// Version asks the agent of hostID for its version.
func (c *Client) Version(ctx context.Context, hostID string) (*evidence.VersionInfo, error) {
	req := evidence.VersionRequest{Version: evidence.Version}
	return ask(ctx, c, hostID, bus.VersionRequest, &req, func(r *evidence.VersionInfo) *evidence.Error { return r.Error })
}

// ask sends in to the agent of hostID and returns its decoded reply R;
// replyErr reads the reply's Error field.
func ask[R any, PR interface {
	*R
	evidence.Message
}](ctx context.Context, c *Client, hostID string, subj bus.Request, in any, replyErr func(*R) *evidence.Error) (*R, error) {
	resp := PR(new(R))
	if err := c.request(ctx, hostID, subj, in, resp, func() *evidence.Error { return replyErr(resp) }); err != nil {
		return nil, err
	}
	return resp, nil
}

// request sends in to the agent of hostID and decodes its reply into out.
// replyErr reads the Error field of out after decoding.
func (c *Client) request(ctx context.Context, hostID string, r bus.Request, in any, out evidence.Message, replyErr func() *evidence.Error) error {
	subject, err := bus.AgentRequestSubject(hostID, r)
	if err != nil {
		return fmt.Errorf("%s to host %q: %w", r, hostID, err)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s to host %q: encode request: %w", r, hostID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.send(ctx, subject, body)
	if err != nil {
		return &RequestError{HostID: hostID, Request: r, Kind: transportKind(err), Err: err}
	}
	if err := evidence.Decode(msg.Data, out); err != nil {
		return &RequestError{HostID: hostID, Request: r, Kind: ErrBadReply, Err: err}
	}
	if e := replyErr(); e != nil {
		return &AgentError{HostID: hostID, Request: r, Code: e.Code, Message: e.Message}
	}
	return nil
}

// NoRespondersGrace is how long a request keeps being sent while no agent
// listens for the host: an agent whose NATS server went away (a verifier
// replica stopped) reconnects to another server and subscribes again within
// it, and its host must not be reported unreachable in between (issue 14).
const NoRespondersGrace = time.Second

// noRespondersRetry is the pause between those sends.
const noRespondersRetry = 100 * time.Millisecond

// send sends one request, again while no agent listens for up to
// NoRespondersGrace (within ctx). When ctx ends during a send again, the
// host is reported as it was found, with no agent listening, not as an
// agent that did not answer in time.
func (c *Client) send(ctx context.Context, subject string, body []byte) (*nats.Msg, error) {
	deadline := time.Now().Add(NoRespondersGrace)
	var noResponders error
	for {
		msg, err := c.nc.RequestWithContext(ctx, subject, body)
		if err != nil && noResponders != nil && ctx.Err() != nil && !errors.Is(err, nats.ErrNoResponders) {
			return nil, noResponders
		}
		if err == nil || !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			return msg, err
		}
		noResponders = err
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(noRespondersRetry):
		}
	}
}

// transportKind classifies a request error. A cancelled context is no
// timeout: the caller gave up, and the error says so through its cause.
func transportKind(err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return ErrNoResponders
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return ErrTimeout
	}
	return nil
}
