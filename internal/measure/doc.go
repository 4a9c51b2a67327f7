// Package measure collects, on the node, what the trust agent reports besides
// the TPM quote: the TCG measured-boot event log, the IMA runtime measurement
// log and the host facts of evidence.HostInfo.
//
// Every path is read below a configurable root directory through an os.Root,
// so tests run against fixture trees (see testdata/README.md) and a symbolic
// link in such a tree can never lead outside it. On a real node the root is
// "/"; an agent in a container that sees the host file system at /host uses
// "/host".
//
// Nothing here is trusted by the verifier on its own: the event log and the
// IMA log are replayed against quoted PCRs, and host facts are claims. The
// package reports what the node says, precisely, and tells "absent" apart
// from "malformed".
package measure
