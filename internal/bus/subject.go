package bus

import (
	"errors"
	"fmt"
	"strings"
)

// Subject prefixes. The first token names the direction of the traffic; the
// second is always the host id, so that a permission on "<prefix>.<host-id>.>"
// confines a user to one host.
const (
	agentPrefix  = "trust-agent"
	eventPrefix  = "trust-events"
	reportPrefix = "trust-reports"
	credsPrefix  = "trust-credentials" //nolint:gosec // G101: a subject prefix, not a credential
	// managerCredsPrefix is the renewal subjects of attestation managers:
	// trust-credentials-manager.<name>.renew|issued. A first token of its
	// own, so that no agent wildcard (trust-credentials.*.x) matches it.
	managerCredsPrefix = "trust-credentials-manager" //nolint:gosec // G101: a subject prefix, not a credential
	inboxPrefix        = "_INBOX"
)

// Wildcard subjects for the consumers of all hosts.
const (
	// AllAgentRequests matches every request to every agent.
	AllAgentRequests = agentPrefix + ".>"
	// AllEvents matches every event of every agent.
	AllEvents = eventPrefix + ".>"
	// AllReports matches every trust report.
	AllReports = reportPrefix + ".>"
	// AllInboxes matches every reply inbox.
	AllInboxes = inboxPrefix + ".>"
	// AllRenewals matches every agent's request for fresh credentials.
	AllRenewals = credsPrefix + ".*." + renewToken
	// AllIssued matches every answer to a renewal.
	AllIssued = credsPrefix + ".*." + issuedToken
	// AllManagerRenewals matches every attestation manager's request for
	// fresh credentials.
	AllManagerRenewals = managerCredsPrefix + ".*." + renewToken
	// AllManagerIssued matches every answer to a manager's renewal.
	AllManagerIssued = managerCredsPrefix + ".*." + issuedToken
)

// Last tokens of the credential renewal subjects.
const (
	renewToken  = "renew"
	issuedToken = "issued"
)

// Request names a request the verifier sends to a trust agent.
type Request string

// Requests a trust agent answers, as the last token of
// trust-agent.<host-id>.<request>.
const (
	QuoteRequest       Request = "quote-request"
	HostInfoRequest    Request = "host-info-request"
	AIKRequest         Request = "aik-request"
	VersionRequest     Request = "version-request"
	ActivateCredential Request = "activate-credential"
)

func (r Request) valid() bool {
	switch r {
	case QuoteRequest, HostInfoRequest, AIKRequest, VersionRequest, ActivateCredential:
		return true
	}
	return false
}

// EventType names an event a trust agent publishes, as the last token of
// trust-events.<host-id>.<type>.
type EventType string

// Event types.
const (
	BootEvent EventType = "boot"
	IMAEvent  EventType = "ima"
)

// EventTypes are the event types there are.
var EventTypes = []EventType{BootEvent, IMAEvent}

func (e EventType) valid() bool {
	return e == BootEvent || e == IMAEvent
}

// AllEventsOf matches the events of type t of every agent:
// trust-events.*.<type>.
func AllEventsOf(t EventType) string { return eventPrefix + ".*." + string(t) }

// MaxHostIDLen is the longest host id accepted in a subject.
const MaxHostIDLen = 64

// ErrInvalidHostID is wrapped by every error about a host id that cannot be
// used as a subject token.
var ErrInvalidHostID = errors.New("invalid host id")

// ErrInvalidSubject is wrapped by the errors of the subject parsers and
// builders for anything but the host id.
var ErrInvalidSubject = errors.New("invalid subject")

// ValidateHostID reports whether id can be one token of a subject: 1 to 64
// characters out of [A-Za-z0-9_-]. That excludes the NATS separators and
// wildcards ".", "*" and ">", and whitespace.
func ValidateHostID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidHostID)
	}
	if len(id) > MaxHostIDLen {
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalidHostID, len(id), MaxHostIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("%w %q: character %q at %d, only A-Z a-z 0-9 - _ allowed", ErrInvalidHostID, id, c, i)
		}
	}
	return nil
}

// AgentRequestSubject is the subject of a request to the agent of hostID:
// trust-agent.<host-id>.<request>.
func AgentRequestSubject(hostID string, r Request) (string, error) {
	return knownSubject(agentPrefix, hostID, string(r), r.valid(), "request")
}

// AgentRequests is the subject the agent of hostID subscribes to:
// trust-agent.<host-id>.>.
func AgentRequests(hostID string) (string, error) { return hostSubject(agentPrefix, hostID, ">") }

// EventSubject is the subject of an event of hostID:
// trust-events.<host-id>.<type>.
func EventSubject(hostID string, t EventType) (string, error) {
	return knownSubject(eventPrefix, hostID, string(t), t.valid(), "event type")
}

// ReportSubject is the subject of the trust reports of hostID:
// trust-reports.<host-id>.
func ReportSubject(hostID string) (string, error) { return hostSubject(reportPrefix, hostID, "") }

// knownSubject is hostSubject for a last token of a known kind (a request,
// an event type); known says whether it is one.
func knownSubject(prefix, hostID, last string, known bool, kind string) (string, error) {
	s, err := hostSubject(prefix, hostID, last)
	if err == nil && !known {
		return "", fmt.Errorf("%w: unknown %s %q", ErrInvalidSubject, kind, last)
	}
	return s, err
}

// hostSubject is prefix.<hostID>.last, or prefix.<hostID> when last is
// empty, for a valid hostID.
func hostSubject(prefix, hostID, last string) (string, error) {
	if err := ValidateHostID(hostID); err != nil {
		return "", err
	}
	if last == "" {
		return prefix + "." + hostID, nil
	}
	return prefix + "." + hostID + "." + last, nil
}

// parseRenewal returns the name of prefix.<name>.renew.
func parseRenewal(subject, prefix string) (string, error) {
	name, last, err := splitSubject(subject, prefix, 3)
	if err != nil {
		return "", err
	}
	if last != renewToken {
		return "", fmt.Errorf("%w %q: want a renewal", ErrInvalidSubject, subject)
	}
	return name, nil
}

// ManagerRenewSubject is where the attestation manager called name asks for
// fresh credentials: trust-credentials-manager.<name>.renew. Only that
// manager may publish to it. name follows the host id grammar.
func ManagerRenewSubject(name string) (string, error) {
	return managerSubject(name, renewToken)
}

// ManagerIssuedSubject is where the verifier answers a renewal of the
// manager called name: trust-credentials-manager.<name>.issued. Only that
// manager may subscribe to it (the answer carries a user seed).
func ManagerIssuedSubject(name string) (string, error) {
	return managerSubject(name, issuedToken)
}

// ManagerSubjects are the subjects of its own that the manager called name
// may use, for its credentials' permissions: it subscribes to sub (the
// answers to its renewals) and publishes on pub (its renewals).
func ManagerSubjects(name string) (sub, pub []string, err error) {
	if err := ValidateHostID(name); err != nil {
		return nil, nil, fmt.Errorf("manager name: %w", err)
	}
	at := managerCredsPrefix + "." + name + "."
	return []string{at + issuedToken}, []string{at + renewToken}, nil
}

// managerSubject is trust-credentials-manager.<name>.last.
func managerSubject(name, last string) (string, error) {
	s, err := hostSubject(managerCredsPrefix, name, last)
	if err != nil {
		return "", fmt.Errorf("manager name: %w", err)
	}
	return s, nil
}

// ParseManagerRenewSubject returns the manager name of
// trust-credentials-manager.<name>.renew. The name is the one the server let
// publish there; never take it from the payload.
func ParseManagerRenewSubject(subject string) (name string, err error) {
	return parseRenewal(subject, managerCredsPrefix)
}

// ParseAgentRequestSubject splits trust-agent.<host-id>.<request>.
func ParseAgentRequestSubject(subject string) (hostID string, r Request, err error) {
	return parseKnown[Request](subject, agentPrefix, "request")
}

// ParseEventSubject splits trust-events.<host-id>.<type>. The host id of an
// event is the one in its subject, which the server lets only that host's agent
// publish to; never take it from the payload.
func ParseEventSubject(subject string) (hostID string, t EventType, err error) {
	return parseKnown[EventType](subject, eventPrefix, "event type")
}

// parseKnown splits prefix.<host-id>.<last> whose last token is a known T
// (a request, an event type).
func parseKnown[T interface {
	~string
	valid() bool
}](subject, prefix, kind string) (string, T, error) {
	host, last, err := splitSubject(subject, prefix, 3)
	if err != nil {
		return "", "", err
	}
	if t := T(last); t.valid() {
		return host, t, nil
	}
	return "", "", fmt.Errorf("%w %q: unknown %s %q", ErrInvalidSubject, subject, kind, last)
}

// ParseReportSubject returns the host id of trust-reports.<host-id>.
func ParseReportSubject(subject string) (hostID string, err error) {
	host, _, err := splitSubject(subject, reportPrefix, 2)
	return host, err
}

// splitSubject checks that subject is prefix.<host-id>[.<last>] with n tokens
// and returns the host id and the last token.
func splitSubject(subject, prefix string, n int) (hostID, last string, err error) {
	tokens := strings.Split(subject, ".")
	if len(tokens) != n || tokens[0] != prefix {
		return "", "", fmt.Errorf("%w %q: want %d tokens starting with %q", ErrInvalidSubject, subject, n, prefix)
	}
	if err := ValidateHostID(tokens[1]); err != nil {
		return "", "", fmt.Errorf("%w %q: %w", ErrInvalidSubject, subject, err)
	}
	return tokens[1], tokens[n-1], nil
}
