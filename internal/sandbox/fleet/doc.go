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
//   - the product's attestation manager (internal/manager, with its verifier
//     client and the Kubernetes adapter internal/cluster) acting on the
//     nodes' Node objects: in a local Kubernetes API (an in-memory object
//     store behind the client interface, localapi.go), whose reconciles
//     runLocal drives, or with Options.KubeConfig in a real cluster, as the
//     controller-runtime reconciler;
//   - controls that change a node by hand (Fleet.Do: tamper, extend a PCR,
//     reboot, Secure Boot off, kill the agent, re-onboard), from keys in the
//     live terminal view and from the web page on loopback after an AAS
//     login.
//
// The simulator has no EK certificate, so the verifier runs with
// Enrollment.AllowRegisteredEKs and the sandbox registers each node's EK
// public key (POST /hvs/v2/tpm-endorsements) and enrolls the AK by
// credential activation (POST /hvs/v2/aik-enrollments): the same path an
// operator takes for a TPM without an EK certificate. The manager then
// registers the host and baselines it, as in production.
//
// It is a separate package from internal/sandbox, whose measured-boot
// helpers the verifier's own tests use: this one imports the verifier.
package fleet
