// Package bus is the client side of the Trusted Compute message bus (NATS):
// the subject grammar, the requests and events, the credentials and their
// renewal, and Conn, the connection as the agent uses it. The trust agent,
// the verifier and the attestation manager share it; it links neither
// nats.go nor jwt/v2 (natsbus connects with nats.go, natsconn is the trust
// agent's own small client); the embedded server, its operator/account authority and the
// minting of credentials live in the verifier (internal/verifier/busserver),
// so that the agent never links the NATS server.
//
// # Subjects
//
//	trust-agent.<host-id>.<request>  verifier → agent, request/reply
//	                                 (quote-request, host-info-request, aik-request,
//	                                 version-request, activate-credential)
//	trust-events.<host-id>.<type>    agent → verifier (boot, ima)
//	trust-reports.<host-id>          verifier → attestation manager
//
// An agent's renewals and secret requests, and their answers, are in its
// AgentGrammar: under trust-events.<host-id> and trust-agent.<host-id>
// (GrammarTwoPrefixes), or under trust-credentials and trust-secrets
// (GrammarSplit, agents before 2026-12).
//
// A host id is one subject token: 1 to 64 of [A-Za-z0-9_-] (see
// ValidateHostID), so it can never smuggle a "." or a wildcard into a subject.
//
// # Connections
//
// Every connection uses TLS 1.3 verified against the pinned CMS roots and the
// user credentials (JWT + seed) that AAS issued, held in memory only. While
// the server is unreachable natsbus.Connect and natsconn.Dial retry with jittered exponential
// backoff; once connected, the connection reconnects forever on its own.
package bus
