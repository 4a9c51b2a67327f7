package bus

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidateHostID(t *testing.T) {
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"a uuid is a host id", "2f1b7c1e-4c5d-4b7a-9d2e-0a1b2c3d4e5f", true},
		{"letters, digits, dash and underscore are allowed", "edge_node-01", true},
		{"64 characters are allowed", strings.Repeat("a", 64), true},
		{"65 characters are too many", strings.Repeat("a", 65), false},
		{"an empty id is refused", "", false},
		{"a dot would add a subject token", "H1.quote-request", false},
		{"a star is a wildcard", "*", false},
		{"a greater-than sign is a wildcard", ">", false},
		{"a space would split the protocol line", "H 1", false},
		{"a non-ascii letter is refused", "hôte", false},
		{"a NUL byte is refused", "H\x001", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateHostID(tt.id)
			if tt.ok && err != nil {
				t.Errorf("ValidateHostID(%q) = %v, want nil", tt.id, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidHostID) {
				t.Errorf("ValidateHostID(%q) = %v, want ErrInvalidHostID", tt.id, err)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name  string
		build func() (string, error)
		want  string // "" means an error is expected
	}{
		{"a quote request goes to the host's agent", func() (string, error) { return AgentRequestSubject("H1", QuoteRequest) }, "trust-agent.H1.quote-request"},
		{"credential activation is a request too", func() (string, error) { return AgentRequestSubject("H1", ActivateCredential) }, "trust-agent.H1.activate-credential"},
		{"an unknown request is refused", func() (string, error) { return AgentRequestSubject("H1", "reboot") }, ""},
		{"a request to a bad host id is refused", func() (string, error) { return AgentRequestSubject("H1.*", QuoteRequest) }, ""},
		{"an agent subscribes to all of its requests", func() (string, error) { return AgentRequests("H1") }, "trust-agent.H1.>"},
		{"an agent asks for fresh credentials on its own renewal subject", func() (string, error) { return RenewSubject("H1") }, "trust-credentials.H1.renew"},
		{"the verifier answers a renewal on the host's own subject", func() (string, error) { return IssuedSubject("H1") }, "trust-credentials.H1.issued"},
		{"a renewal for a wildcard host is refused", func() (string, error) { return RenewSubject("*") }, ""},
		{"an ima event is under the host's events", func() (string, error) { return EventSubject("H1", IMAEvent) }, "trust-events.H1.ima"},
		{"an unknown event type is refused", func() (string, error) { return EventSubject("H1", "shutdown") }, ""},
		{"a report is under the host's reports", func() (string, error) { return ReportSubject("H1") }, "trust-reports.H1"},
		{"a report for a wildcard host is refused", func() (string, error) { return ReportSubject(">") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.build()
			if tt.want == "" {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseSubjects(t *testing.T) {
	tests := []struct {
		name, subject string
		parse         func(string) (string, string, error)
		host, last    string
		ok            bool
	}{
		{"an event subject names its host and type", "trust-events.H1.boot", parseEvent, "H1", "boot", true},
		{"an event of an unknown type is refused", "trust-events.H1.reboot", parseEvent, "", "", false},
		{"an event with an extra token is refused", "trust-events.H1.boot.x", parseEvent, "", "", false},
		{"a request subject is not an event", "trust-agent.H1.boot", parseEvent, "", "", false},
		{"a request subject names its host and request", "trust-agent.H2.aik-request", parseRequest, "H2", "aik-request", true},
		{"a request with an empty host is refused", "trust-agent..aik-request", parseRequest, "", "", false},
		{"a report subject names its host", "trust-reports.H3", parseReport, "H3", "H3", true},
		{"a report with a wildcard host is refused", "trust-reports.*", parseReport, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, last, err := tt.parse(tt.subject)
			if !tt.ok {
				if err == nil {
					t.Errorf("parsed %q as %q %q, want an error", tt.subject, host, last)
				}
				return
			}
			if err != nil || host != tt.host || last != tt.last {
				t.Errorf("got %q %q %v, want %q %q", host, last, err, tt.host, tt.last)
			}
		})
	}
}

func parseEvent(s string) (string, string, error) {
	h, e, err := ParseEventSubject(s)
	return h, string(e), err
}

func parseRequest(s string) (string, string, error) {
	h, r, err := ParseAgentRequestSubject(s)
	return h, string(r), err
}

func parseReport(s string) (string, string, error) {
	h, err := ParseReportSubject(s)
	return h, h, err
}

// FuzzParseSubjects checks that whatever parses rebuilds to the same subject.
func FuzzParseSubjects(f *testing.F) {
	for _, s := range []string{"trust-events.H1.boot", "trust-agent.H1.quote-request", "trust-reports.H1", "trust-events.H1.>", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h, e, err := ParseEventSubject(s); err == nil {
			if got, err := EventSubject(h, e); err != nil || got != s {
				t.Errorf("event %q rebuilt as %q, %v", s, got, err)
			}
		}
		if h, r, err := ParseAgentRequestSubject(s); err == nil {
			if got, err := AgentRequestSubject(h, r); err != nil || got != s {
				t.Errorf("request %q rebuilt as %q, %v", s, got, err)
			}
		}
		if h, err := ParseReportSubject(s); err == nil {
			if got, err := ReportSubject(h); err != nil || got != s {
				t.Errorf("report %q rebuilt as %q, %v", s, got, err)
			}
		}
	})
}

func TestParseRenewSubject(t *testing.T) {
	tests := []struct {
		name, subject string
		want          string // "" means an error is expected
	}{
		{"a renewal names its host", "trust-credentials.H1.renew", "H1"},
		{"an answer is not a renewal", "trust-credentials.H1.issued", ""},
		{"an extra token is refused", "trust-credentials.H1.x.renew", ""},
		{"another prefix is refused", "trust-events.H1.renew", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRenewSubject(tt.subject)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidSubject) {
					t.Fatalf("ParseRenewSubject(%q) = %q, %v, want ErrInvalidSubject", tt.subject, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRenewSubject(%q) = %q, %v, want %q", tt.subject, got, err, tt.want)
			}
		})
	}
}

func TestAgentSubjectsAreTheHostsOwnAndNoOther(t *testing.T) {
	sub, pub, err := AgentSubjects("H1")
	if err != nil {
		t.Fatal(err)
	}
	wantSub := []string{"trust-agent.H1.>", "trust-credentials.H1.issued", "trust-secrets.H1.answer"}
	wantPub := []string{"trust-events.H1.>", "trust-credentials.H1.renew", "trust-secrets.H1.request"}
	if !slices.Equal(sub, wantSub) || !slices.Equal(pub, wantPub) {
		t.Errorf("AgentSubjects(H1) = %q, %q; want %q, %q", sub, pub, wantSub, wantPub)
	}
	for _, id := range []string{"", "*", ">", "H1.>", "H 1"} {
		if _, _, err := AgentSubjects(id); !errors.Is(err, ErrInvalidHostID) {
			t.Errorf("AgentSubjects(%q) = %v, want ErrInvalidHostID", id, err)
		}
	}
}
