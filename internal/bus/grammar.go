package bus

import (
	"fmt"
	"slices"
	"strings"
)

// AgentGrammar is the layout of a trust agent's own subjects beyond its
// requests and events: where it asks for fresh credentials and for its
// secrets, and where the verifier answers. Requests
// (trust-agent.<host-id>.<request>) and events
// (trust-events.<host-id>.<type>) are the same in every grammar.
//
//	                  GrammarSplit                     GrammarTwoPrefixes
//	renewal           trust-credentials.<host>.renew   trust-events.<host>.renew
//	its answer        trust-credentials.<host>.issued  trust-agent.<host>.issued
//	secret request    trust-secrets.<host>.request     trust-events.<host>.secret-request
//	secret answer     trust-secrets.<host>.answer      trust-agent.<host>.secret-answer
//
// Credentials of GrammarTwoPrefixes allow the agent one subject to
// subscribe to (trust-agent.<host-id>.>) and one to publish on
// (trust-events.<host-id>.>), where GrammarSplit's allow three of each.
// nats-server keeps each allowed subject in the connection's permission
// trees: about 80 heap objects a connected agent fewer
// (BenchmarkAgentConnectionHeldObjects in internal/verifier/busserver),
// which the verifier's collector no longer marks at every collection.
//
// Either grammar confines an agent to its own host's subjects, and
// GrammarSplit's permissions allow every subject of GrammarTwoPrefixes too.
// An agent uses the grammar of the credentials it holds
// (Credentials.AgentGrammar): a verifier that issued GrammarTwoPrefixes
// serves it. The verifier serves both, answers on the grammar a request
// came in, and issues GrammarTwoPrefixes to an agent that asks for it
// (RenewRequest.Grammar, or the bus-grammar parameter of
// POST /aas/v1/credentials), GrammarSplit otherwise, so agents from before
// the grammar keep working.
type AgentGrammar int

// Agent grammars.
const (
	// GrammarSplit is the grammar of agents before 2026-12: the
	// credential and secret subjects have prefixes of their own.
	GrammarSplit AgentGrammar = 1
	// GrammarTwoPrefixes puts everything to the agent under
	// trust-agent.<host-id> and everything from it under
	// trust-events.<host-id>.
	GrammarTwoPrefixes AgentGrammar = 2
)

// Last tokens of GrammarTwoPrefixes's secret subjects.
const (
	secretRequestToken = "secret-request"
	secretAnswerToken  = "secret-answer"
)

// Wildcards of the verifier for GrammarTwoPrefixes (AllRenewals and
// AllSecretRequests are GrammarSplit's).
const (
	// AllRenewalsTwoPrefixes matches every agent's renewal in
	// GrammarTwoPrefixes.
	AllRenewalsTwoPrefixes = eventPrefix + ".*." + renewToken
	// AllSecretRequestsTwoPrefixes matches every agent's secret request in
	// GrammarTwoPrefixes.
	AllSecretRequestsTwoPrefixes = eventPrefix + ".*." + secretRequestToken
)

// Valid reports whether g is a grammar this package knows.
func (g AgentGrammar) Valid() bool { return g == GrammarSplit || g == GrammarTwoPrefixes }

func (g AgentGrammar) String() string {
	switch g {
	case GrammarSplit:
		return "split"
	case GrammarTwoPrefixes:
		return "two-prefixes"
	}
	return fmt.Sprintf("AgentGrammar(%d)", int(g))
}

// Granted is the grammar the verifier issues to an agent that asks for g:
// g when it is one this package knows, the newest it knows when g is
// newer, GrammarSplit when g is zero (not asked) or less.
func (g AgentGrammar) Granted() AgentGrammar {
	return min(max(g, GrammarSplit), GrammarTwoPrefixes)
}

// subject is the subject of hostID with its prefix and last token for each
// grammar.
func (g AgentGrammar) subject(hostID string, split, twoPrefixes [2]string) (string, error) {
	p := split
	switch g {
	case GrammarSplit:
	case GrammarTwoPrefixes:
		p = twoPrefixes
	default:
		return "", fmt.Errorf("%w: unknown agent grammar %d", ErrInvalidSubject, int(g))
	}
	return hostSubject(p[0], hostID, p[1])
}

// RenewSubject is where the agent of hostID asks for fresh credentials.
// Only that agent may publish to it.
func (g AgentGrammar) RenewSubject(hostID string) (string, error) {
	return g.subject(hostID, [2]string{credsPrefix, renewToken}, [2]string{eventPrefix, renewToken})
}

// IssuedSubject is where the verifier answers a renewal of hostID. Only
// that agent may subscribe to it (the answer carries a user seed).
func (g AgentGrammar) IssuedSubject(hostID string) (string, error) {
	return g.subject(hostID, [2]string{credsPrefix, issuedToken}, [2]string{agentPrefix, issuedToken})
}

// SecretRequestSubject is where the agent of hostID asks for its secrets.
func (g AgentGrammar) SecretRequestSubject(hostID string) (string, error) {
	return g.subject(hostID, [2]string{secretsPrefix, requestToken}, [2]string{eventPrefix, secretRequestToken})
}

// SecretAnswerSubject is where the verifier answers the agent of hostID
// and pushes its revocations.
func (g AgentGrammar) SecretAnswerSubject(hostID string) (string, error) {
	return g.subject(hostID, [2]string{secretsPrefix, answerToken}, [2]string{agentPrefix, secretAnswerToken})
}

// AgentSubjects are the subjects the agent of hostID may use in grammar g,
// for its credentials' permissions: it subscribes to sub and publishes on
// pub.
func AgentSubjects(hostID string, g AgentGrammar) (sub, pub []string, err error) {
	if err := ValidateHostID(hostID); err != nil {
		return nil, nil, err
	}
	at := func(prefix, last string) string { return prefix + "." + hostID + "." + last }
	switch g {
	case GrammarSplit:
		sub = []string{at(agentPrefix, ">"), at(credsPrefix, issuedToken), at(secretsPrefix, answerToken)}
		pub = []string{at(eventPrefix, ">"), at(credsPrefix, renewToken), at(secretsPrefix, requestToken)}
	case GrammarTwoPrefixes:
		sub = []string{at(agentPrefix, ">")}
		pub = []string{at(eventPrefix, ">")}
	default:
		return nil, nil, fmt.Errorf("%w: unknown agent grammar %d", ErrInvalidSubject, int(g))
	}
	return sub, pub, nil
}

// AgentGrammar is the grammar of an agent's credentials:
// GrammarTwoPrefixes when their permissions are exactly those
// AgentSubjects gives for it and the host named in the user name
// (agent:<host-id>), GrammarSplit otherwise (credentials a verifier from
// before the grammar issued, which may not serve it).
func (c *Credentials) AgentGrammar() AgentGrammar {
	host, ok := AgentHostID(c.Name())
	if !ok {
		return GrammarSplit
	}
	sub, pub, err := AgentSubjects(host, GrammarTwoPrefixes)
	if err != nil || !slices.Equal(c.claims.Nats.Sub.Allow, sub) || !slices.Equal(c.claims.Nats.Pub.Allow, pub) {
		return GrammarSplit
	}
	return GrammarTwoPrefixes
}

// ParseRenewSubject returns the host id and the grammar of an agent's
// renewal subject. The host id is the one the server let publish there;
// never take it from the payload.
func ParseRenewSubject(subject string) (hostID string, g AgentGrammar, err error) {
	return parseGrammar(subject, [2]string{credsPrefix, renewToken}, [2]string{eventPrefix, renewToken}, "a renewal")
}

// ParseSecretRequestSubject returns the host id and the grammar of an
// agent's secret request subject.
func ParseSecretRequestSubject(subject string) (hostID string, g AgentGrammar, err error) {
	return parseGrammar(subject, [2]string{secretsPrefix, requestToken}, [2]string{eventPrefix, secretRequestToken}, "a secret request")
}

// parseGrammar splits prefix.<host-id>.last where prefix and last are
// those of split or of twoPrefixes.
func parseGrammar(subject string, split, twoPrefixes [2]string, want string) (string, AgentGrammar, error) {
	g := GrammarSplit
	if strings.HasPrefix(subject, twoPrefixes[0]+".") {
		g = GrammarTwoPrefixes
		split = twoPrefixes
	}
	host, last, err := splitSubject(subject, split[0], 3)
	if err != nil {
		return "", 0, err
	}
	if last != split[1] {
		return "", 0, fmt.Errorf("%w %q: want %s", ErrInvalidSubject, subject, want)
	}
	return host, g, nil
}

// IsAgentAnswer reports whether subject is an answer to an agent in
// GrammarTwoPrefixes (trust-agent.<host-id>.issued or
// trust-agent.<host-id>.secret-answer): under the agent's requests, and
// none of them.
func IsAgentAnswer(subject string) bool {
	_, last, err := splitSubject(subject, agentPrefix, 3)
	return err == nil && (last == issuedToken || last == secretAnswerToken)
}
