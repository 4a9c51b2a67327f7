// Package fleet is `tcctl sandbox`: the whole system on one machine, with no
// cluster and no TPM hardware. It runs
//
//   - the verifier in process (embedded NATS, SQLite in the data dir);
//   - N edge nodes, each a process of the same binary (the hidden
//     "sandbox node" command, or a test binary's TestMain) with its own
//     in-process TPM simulator — one simulator per process is why they are
//     processes — a real OVMF event log replayed into its PCRs, an IMA log
//     whose entries are extended into PCR 10, and the trust agent dialling
//     the verifier's bus with credentials from the verifier's authority;
//   - an attestation manager (the Manager interface; a minimal built-in loop
//     until internal/manager plugs in) acting on a Registry that records what
//     the Kubernetes adapter (internal/cluster) would do to the Nodes;
//   - a live terminal view and a read-only web page on loopback.
//
// The simulator has no EK certificate, so the verifier runs with
// Enrollment.AllowRegisteredEKs and the sandbox registers each node's EK
// public key (POST /hvs/v2/tpm-endorsements) before registering the host,
// which enrolls the AK by credential activation: the same path an operator
// takes for a TPM without an EK certificate.
//
// It is a separate package from internal/sandbox, whose measured-boot
// helpers the verifier's own tests use: this one imports the verifier.
package fleet
