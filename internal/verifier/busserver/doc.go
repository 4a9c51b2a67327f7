// Package busserver is the verifier's side of the NATS bus: the embedded
// server and the authority that mints every party's credentials. The client
// side (subjects, Connect) is package internal/bus.
//
// # Authentication
//
// The server runs in NATS operator mode (decentralized JWT auth). An operator
// key signs two accounts, "TC" and the system account; the TC account key
// signs the JWT of every user. The seeds of the operator and accounts live in
// the verifier's secret store (Authority); a user's credentials (JWT + user
// seed, a .creds file) are issued by AAS and held only by that user. The server
// preloads the account JWTs in a memory resolver: there is no account server.
// Every user JWT expires; the server refuses expired credentials and drops a
// connection when its credentials expire. All client connections use TLS 1.3
// verified against the CMS roots; the server refuses plaintext clients.
//
// # Permissions
//
// The server enforces them; a client cannot widen them.
//
//	user      subscribe                      publish
//	agent H   trust-agent.H.>                trust-events.H.>
//	          trust-credentials.H.issued     trust-credentials.H.renew
//	          + one reply, within ResponseWindow, to each request it received
//	service   trust-events.>, _INBOX.>       trust-agent.>, trust-reports.>
//	          trust-verifier.revocations     trust-verifier.revocations
//	          trust-credentials.*.renew      trust-credentials.*.issued
//	manager   trust-reports.>                nothing
//
// An agent therefore sees only its own requests, can answer only those (a
// reply subject it did not receive is refused), and can raise events only in
// its own name: a consumer takes the host id of an event from its subject,
// never from its payload.
//
// The answer allowance is counted per connection, and nats-server counts the
// delivery of a request to a second subscription of the same connection as
// the use of it: an agent must have exactly one subscription matching each
// request subject (one "trust-agent.<host-id>.>" subscription that dispatches
// on the last token), or it cannot answer at all.
//
// # Renewal and revocation
//
// An agent renews its credentials over the bus (Renewer): it asks on its own
// renewal subject and the verifier answers, for a registered host that is not
// disabled only, on the subject only that agent may read; a manager does the
// same on its own subjects.
//
// Every user key issued to an agent, a manager or a service is recorded in the
// authority's Ledger (the verifier's store) before the credentials are handed
// out. Deleting or disabling a host revokes its agent's keys, and the key of
// every connection open under its name, in the ledger and in the account TC
// of the running server (Server.RevokeHost), which closes those connections at
// once; Server.RevokeManager and Server.RevokeService do the same for a named
// manager or service. The verifier's own connection to its embedded server
// uses in-process-only credentials (InProcessCredentials) that are not
// recorded, so that no revocation cuts the verifier off its bus. At start
// NewAuthority (WithLedger) signs the ledger's unexpired revocations into the
// account JWT the server preloads, so a revoked key is refused from the first
// connection after a restart. Renewer.Run also re-checks, every
// ReconcileInterval, the connected agents against the allowed hosts, and
// prunes the keys whose JWTs expired.
//
// # Replicas
//
// Verifier replicas on one database build the same Authority (the seeds and
// the ledger are in the database) and join their embedded servers by routes
// (ClusterConfig): TLS 1.3 both ways, each peer's certificate chaining to the
// pinned CMS root and naming the verifier's own reserved name (RouteTLS). A
// replica that revokes keys announces it on RevocationsSubject (services
// only); every replica's Renewer then signs the ledger's revocations into its
// own server, which closes the revoked connections it holds.
//
// Agent credentials work over TCP only; service and
// manager credentials also in-process; the verifier's own in-process only. Nobody holds system-account
// credentials.
package busserver
