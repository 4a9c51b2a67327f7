// Package eim reports attestation verdicts to the Edge Infrastructure Manager
// (EIM) over gRPC: attestmgr.v1.AttestationStatusMgrService/
// UpdateInstanceAttestationStatusByHostGuid, TLS 1.3 with a configured CA and
// a bearer token read from a file on every call.
//
// The sink is optional. New returns Noop when no address is configured, so the
// composition root wires one Sink either way:
//
//	sink, err := eim.New(cfg.EIM, logger)   // Noop when cfg.EIM.Address == ""
//	notifier := eim.NewNotifier(sink, logger)
//	tasks = append(tasks, notifier.Run)     // Run(ctx) error
//	...
//	notifier.Notify(hostGUID, eim.StatusFailed, "PCR 7 does not match") // never blocks
//
// Client.Update is one logical update with retries. Callers tell failures
// apart with errors.As:
//
//	*InvalidUpdateError  the update was not sent: bad host GUID, status or detail
//	*TokenError          the bearer token file is missing, unreadable or empty
//	*RejectedError       the server refused it with a code that retrying does
//	                     not change (InvalidArgument, NotFound, PermissionDenied,
//	                     Unauthenticated, ...); Code says which
//	*ExhaustedError      every attempt failed with a transient code
//	                     (Unavailable, DeadlineExceeded, ResourceExhausted,
//	                     Aborted); Last is the last attempt's error
//
// The generated code lives in attestmgrv1; regenerate it with hack/protoc.sh.
package eim
