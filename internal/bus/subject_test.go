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
		{"an agent asks for fresh credentials on its own renewal subject", func() (string, error) { return GrammarSplit.RenewSubject("H1") }, "trust-credentials.H1.renew"},
		{"the verifier answers a renewal on the host's own subject", func() (string, error) { return GrammarSplit.IssuedSubject("H1") }, "trust-credentials.H1.issued"},
		{"a renewal for a wildcard host is refused", func() (string, error) { return GrammarSplit.RenewSubject("*") }, ""},
		{"with two prefixes a renewal is one of the agent's events", func() (string, error) { return GrammarTwoPrefixes.RenewSubject("H1") }, "trust-events.H1.renew"},
		{"with two prefixes its answer is under the agent's requests", func() (string, error) { return GrammarTwoPrefixes.IssuedSubject("H1") }, "trust-agent.H1.issued"},
		{"a secret request", func() (string, error) { return GrammarSplit.SecretRequestSubject("H1") }, "trust-secrets.H1.request"},
		{"a secret answer", func() (string, error) { return GrammarSplit.SecretAnswerSubject("H1") }, "trust-secrets.H1.answer"},
		{"a secret request with two prefixes", func() (string, error) { return GrammarTwoPrefixes.SecretRequestSubject("H1") }, "trust-events.H1.secret-request"},
		{"a secret answer with two prefixes", func() (string, error) { return GrammarTwoPrefixes.SecretAnswerSubject("H1") }, "trust-agent.H1.secret-answer"},
		{"a wildcard host with two prefixes is refused", func() (string, error) { return GrammarTwoPrefixes.SecretAnswerSubject("H1.>") }, ""},
		{"an unknown grammar is refused", func() (string, error) { return AgentGrammar(3).RenewSubject("H1") }, ""},
		{"no grammar is refused", func() (string, error) { return AgentGrammar(0).IssuedSubject("H1") }, ""},
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
	for _, s := range []string{"trust-events.H1.boot", "trust-agent.H1.quote-request", "trust-reports.H1", "trust-events.H1.>", "",
		"trust-events.H1.renew", "trust-credentials.H1.renew", "trust-events.H1.secret-request", "trust-secrets.H1.request",
		"trust-agent.H1.issued", "trust-agent.H1.secret-answer"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A renewal or a secret request rebuilds in its grammar, and is
		// neither an event nor a request to an agent.
		for _, p := range []struct {
			parse func(string) (string, AgentGrammar, error)
			build func(AgentGrammar, string) (string, error)
		}{{ParseRenewSubject, AgentGrammar.RenewSubject}, {ParseSecretRequestSubject, AgentGrammar.SecretRequestSubject}} {
			h, g, err := p.parse(s)
			if err != nil {
				continue
			}
			if got, err := p.build(g, h); err != nil || got != s {
				t.Errorf("%q rebuilt in %v as %q, %v", s, g, got, err)
			}
			if _, _, err := ParseEventSubject(s); err == nil {
				t.Errorf("%q parses as an event too", s)
			}
		}
		if IsAgentAnswer(s) {
			if _, _, err := ParseAgentRequestSubject(s); err == nil {
				t.Errorf("the answer %q parses as a request too", s)
			}
		}
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

func TestParseAgentGrammarSubjects(t *testing.T) {
	tests := []struct {
		name, subject string
		parse         func(string) (string, AgentGrammar, error)
		want          string // "" means an error is expected
		grammar       AgentGrammar
	}{
		{"a renewal names its host", "trust-credentials.H1.renew", ParseRenewSubject, "H1", GrammarSplit},
		{"a renewal with two prefixes names its host", "trust-events.H1.renew", ParseRenewSubject, "H1", GrammarTwoPrefixes},
		{"an answer is not a renewal", "trust-credentials.H1.issued", ParseRenewSubject, "", 0},
		{"an answer with two prefixes is not a renewal", "trust-agent.H1.issued", ParseRenewSubject, "", 0},
		{"an event is not a renewal", "trust-events.H1.ima", ParseRenewSubject, "", 0},
		{"an extra token is refused", "trust-credentials.H1.x.renew", ParseRenewSubject, "", 0},
		{"an extra token with two prefixes is refused", "trust-events.H1.x.renew", ParseRenewSubject, "", 0},
		{"a wildcard host is refused", "trust-events.*.renew", ParseRenewSubject, "", 0},
		{"a secret request names its host", "trust-secrets.H1.request", ParseSecretRequestSubject, "H1", GrammarSplit},
		{"a secret request with two prefixes names its host", "trust-events.H1.secret-request", ParseSecretRequestSubject, "H1", GrammarTwoPrefixes},
		{"the split token under two prefixes is refused", "trust-events.H1.request", ParseSecretRequestSubject, "", 0},
		{"a secret answer is not a request", "trust-agent.H1.secret-answer", ParseSecretRequestSubject, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, g, err := tt.parse(tt.subject)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidSubject) {
					t.Fatalf("parse(%q) = %q, %v, %v, want ErrInvalidSubject", tt.subject, got, g, err)
				}
				return
			}
			if err != nil || got != tt.want || g != tt.grammar {
				t.Fatalf("parse(%q) = %q, %v, %v, want %q, %v", tt.subject, got, g, err, tt.want, tt.grammar)
			}
		})
	}
}

func TestAgentSubjectsAreTheHostsOwnAndNoOther(t *testing.T) {
	for _, tt := range []struct {
		g                AgentGrammar
		wantSub, wantPub []string
	}{
		{GrammarSplit, []string{"trust-agent.H1.>", "trust-credentials.H1.issued", "trust-secrets.H1.answer"},
			[]string{"trust-events.H1.>", "trust-credentials.H1.renew", "trust-secrets.H1.request"}},
		{GrammarTwoPrefixes, []string{"trust-agent.H1.>"}, []string{"trust-events.H1.>"}},
	} {
		sub, pub, err := AgentSubjects("H1", tt.g)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sub, tt.wantSub) || !slices.Equal(pub, tt.wantPub) {
			t.Errorf("AgentSubjects(H1, %v) = %q, %q; want %q, %q", tt.g, sub, pub, tt.wantSub, tt.wantPub)
		}
		for _, id := range []string{"", "*", ">", "H1.>", "H 1"} {
			if _, _, err := AgentSubjects(id, tt.g); !errors.Is(err, ErrInvalidHostID) {
				t.Errorf("AgentSubjects(%q, %v) = %v, want ErrInvalidHostID", id, tt.g, err)
			}
		}
	}
	if _, _, err := AgentSubjects("H1", 0); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("AgentSubjects(H1, 0) = %v, want ErrInvalidSubject", err)
	}
}

// TestEveryGrammarSubjectIsWithinTheSplitPermissions: an agent holding
// credentials of either grammar may use the subjects of GrammarTwoPrefixes,
// so an agent that moves to it needs no new credentials first.
func TestEveryGrammarSubjectIsWithinTheSplitPermissions(t *testing.T) {
	sub, pub, err := AgentSubjects("H1", GrammarSplit)
	if err != nil {
		t.Fatal(err)
	}
	within := func(allowed []string, subject string) bool {
		for _, a := range allowed {
			if a == subject || (strings.HasSuffix(a, ".>") && strings.HasPrefix(subject, strings.TrimSuffix(a, ">"))) {
				return true
			}
		}
		return false
	}
	for _, g := range []AgentGrammar{GrammarSplit, GrammarTwoPrefixes} {
		gsub, gpub, _ := AgentSubjects("H1", g)
		for _, build := range []func(string) (string, error){g.IssuedSubject, g.SecretAnswerSubject} {
			s, _ := build("H1")
			if !within(sub, s) || !within(gsub, s) {
				t.Errorf("%v: the agent may not subscribe to %s", g, s)
			}
		}
		for _, build := range []func(string) (string, error){g.RenewSubject, g.SecretRequestSubject} {
			s, _ := build("H1")
			if !within(pub, s) || !within(gpub, s) {
				t.Errorf("%v: the agent may not publish on %s", g, s)
			}
		}
	}
}

func TestAGrammarIsGrantedUpToTheNewestKnown(t *testing.T) {
	for asked, want := range map[AgentGrammar]AgentGrammar{
		-1: GrammarSplit, 0: GrammarSplit, GrammarSplit: GrammarSplit,
		GrammarTwoPrefixes: GrammarTwoPrefixes, 3: GrammarTwoPrefixes,
	} {
		if got := asked.Granted(); got != want {
			t.Errorf("AgentGrammar(%d).Granted() = %v, want %v", asked, got, want)
		}
	}
}
