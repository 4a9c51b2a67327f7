// Package cluster is the Kubernetes adapter the attestation manager acts
// through. It labels Nodes, cordons and taints them, sets the
// TrustedAttestation Node condition, records Events on Nodes and evicts pods.
// It decides nothing: the manager tells it what happened and it makes the
// Node say so, idempotently, with the permissions listed in rbac.yaml.
//
// All state lives in the Node objects (labels, annotations, spec, condition),
// so a manager that restarts halfway through an action picks up where it
// stopped: every method reads the Node first and writes only what differs.
// Nodes are changed by strategic-merge PATCH, never by a full update, so
// fields other clients own survive; the taint list, which Kubernetes
// replaces as a whole, is patched with a resourceVersion precondition and
// retried on conflict.
//
// Nothing here uncordons a Node on its own. Only Onboarded, which the manager
// calls after an operator asked for re-onboarding and a fresh attestation
// passed, lifts the cordon, and only a cordon this package set
// (AnnotationCordonedBy); an operator's own cordon stays.
//
// What decides trust or scheduling is kept where the node's own identity
// (system:node:<name>, which may patch its own Node object) cannot write it:
// the status and ready labels carry the node-restriction.kubernetes.io/
// prefix, which the NodeRestriction admission plugin forbids kubelets to
// set, and re-onboarding requests live in a ConfigMap of the manager's
// namespace (OnboardRequests), which the Node authorizer never lets a node
// write. The annotations a node may write (host id, poll duration) are
// claims the manager checks, never verdicts.
package cluster

import (
	"errors"
)

// Labels, annotations, the taint and the Node condition this package owns.
const (
	// LabelEnabled selects the Nodes that take part in Trusted Compute
	// (value "true"). This package never changes it and refuses to act on
	// Nodes without it.
	LabelEnabled = "trustedcompute.io/enabled"
	// LabelStatus holds the node's Status. Under the
	// node-restriction.kubernetes.io/ prefix: a kubelet may not set it.
	LabelStatus = "node-restriction.kubernetes.io/trustedcompute-status"
	// LabelReady is "true" on Verified Nodes that also have Secure Boot and
	// full-disk encryption on, on fresh evidence; confidential workloads
	// select it. It is absent otherwise. Under the
	// node-restriction.kubernetes.io/ prefix: a kubelet may not set it.
	LabelReady = "node-restriction.kubernetes.io/trustedcompute-ready"
	// AnnotationHostID names the host in the verifier; without it the
	// host id is the Node's SMBIOS system UUID. Both are the node's claim:
	// the verifier binds a host id to the first Node name registered with
	// it and refuses any other.
	AnnotationHostID = "trustedcompute.io/host-id"
	// AnnotationOnboard was the re-onboarding request when it lived on the
	// Node, where the node itself could write it. It is ignored; requests
	// are OnboardRequests.
	AnnotationOnboard = "trustedcompute.io/onboard"
	// AnnotationLastReport holds the id of the last trust report acted on.
	AnnotationLastReport = "trustedcompute.io/last-report"
	// AnnotationCordonedBy is set when this package cordoned the Node, so
	// that Onboarded lifts only its own cordon.
	AnnotationCordonedBy = "trustedcompute.io/cordoned-by"
	// TaintUntrusted (effect NoSchedule) keeps pods that do not tolerate it
	// off a failed Node even if someone uncordons it by hand.
	TaintUntrusted = "trustedcompute.io/untrusted"
	// ConditionTrustedAttestation is the Node condition type: True when
	// verified, False when failed, Unknown when no result can be had.
	ConditionTrustedAttestation = "TrustedAttestation"
)

// Reasons used on the TrustedAttestation condition and on Events.
const (
	ReasonVerified           = "Verified"
	ReasonAttestationFailed  = "AttestationFailed"
	ReasonSecureBootDisabled = "SecureBootDisabled"
	ReasonOnboarded          = "Onboarded"
	// ReasonVerifierUnreachable is a typical reason for Pending, and for
	// Withdraw once the evidence is too old.
	ReasonVerifierUnreachable = "VerifierUnreachable"
	// ReasonAgentUnreachable says the verifier could not reach the node's
	// trust agent.
	ReasonAgentUnreachable = "AgentUnreachable"
	// ReasonHostClaimRefused says the Node claims a host id the verifier
	// has bound to another Node (or the Node is bound to another host).
	ReasonHostClaimRefused = "HostClaimRefused"
	// ReasonHostClaimChanged says the Node changed the host it claims faster
	// than the manager attests new claims: its verdict was about the host it
	// claimed before, and is withdrawn until the new claim is attested.
	ReasonHostClaimChanged = "HostClaimChanged"
	// ReasonGoldenFlavorsReplaced says a boot's measurements differed from
	// the node's golden flavors and were made its golden flavors
	// (goldenFlavors everyBoot): an operator's trail of what changed.
	ReasonGoldenFlavorsReplaced = "GoldenFlavorsReplaced"
)

// DefaultName is the default Options.Name: the field manager, the Events'
// reporting controller and the value of AnnotationCordonedBy.
const DefaultName = "trustedcompute.io/attestation-manager"

// Status is a Node's attestation status, the value of LabelStatus.
type Status string

// The statuses. A Node without LabelStatus is Pending.
const (
	StatusPending            Status = "pending"
	StatusVerified           Status = "verified"
	StatusAttestationFailed  Status = "attestation-failed"
	StatusSecureBootDisabled Status = "secure-boot-disabled"
	// StatusUnknown: the Node was Verified but there is no verdict now (its
	// evidence is older than the manager's maxEvidenceAge, or its host
	// claim was refused); the condition says why. Not ready, not cordoned.
	StatusUnknown Status = "unknown"
)

// failureReason is the condition and Event reason of a failure status.
func failureReason(s Status) (string, bool) {
	switch s {
	case StatusAttestationFailed:
		return ReasonAttestationFailed, true
	case StatusSecureBootDisabled:
		return ReasonSecureBootDisabled, true
	}
	return "", false
}

// NodeInfo is what the manager needs to know about a Node.
type NodeInfo struct {
	Name string
	// HostID is AnnotationHostID, or else the system UUID, trimmed and
	// lower-case; empty when the Node has neither.
	HostID string
	// Enabled tells whether the Node carries LabelEnabled=true.
	Enabled bool
	// Status is LabelStatus; StatusPending when the label is absent.
	Status Status
	// Ready tells whether LabelReady is "true".
	Ready bool
	// Cordoned is spec.unschedulable, whoever set it.
	Cordoned bool
	// Tainted tells whether the Node has the TaintUntrusted taint.
	Tainted bool
	// CordonedByUs tells whether this package set the cordon.
	CordonedByUs bool
	// OnboardRequested tells whether an operator asked for re-onboarding
	// (OnboardRequests). Nodes never sets it from the Node itself.
	OnboardRequested bool
	// LastReport is AnnotationLastReport.
	LastReport string
}

// Errors the caller can tell apart with errors.Is.
var (
	ErrNodeNotFound = errors.New("node not found")
	ErrNotEnabled   = errors.New("node is not enabled for trusted compute")
	ErrBadStatus    = errors.New("status is not a failure status")
)
