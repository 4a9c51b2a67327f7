package hvs

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Runtime policies at report time. A report resolves the policy of each of
// the host's flavor groups (the host's own wins, store.HostIMAPolicies),
// finds its compiled form in imaPolicyCache by the SHA-256 of its stored
// document, or loads it: reads the document, verifies HVS's signature of
// it, parses and compiles it, once for every host that uses it. A policy
// whose signature does not verify is never used: the IMA part of the
// report is untrusted with an ImaPolicyTrusted fault.

// Rule and fault of a runtime policy that cannot be used.
const (
	// RuleImaPolicyTrusted: the runtime policy assigned to the host is
	// signed by the verifier and decodes.
	RuleImaPolicyTrusted = "ImaPolicyTrusted"
	// FaultImaPolicyUntrusted: the assigned policy's signature does not
	// verify (or does not cover its document), or the document does not
	// parse: the policy is not used and the IMA part is untrusted.
	FaultImaPolicyUntrusted = "ImaPolicyUntrusted"
)

// Log field keys of runtime policies.
const (
	keyIMAPolicy        = "ima_policy"
	keyIMAPolicyVersion = "ima_policy_version"
)

// imaPolicyMaxAge bounds how long a verified policy is used before its
// signature (and the signing certificate) is checked again.
const imaPolicyMaxAge = time.Hour

// untrustedPolicyError says why a stored policy version is not used.
type untrustedPolicyError struct {
	ref store.IMAPolicyRef
	err error
}

func (e *untrustedPolicyError) Error() string {
	return fmt.Sprintf("ima policy %q version %d is not used: %v", e.ref.Name, e.ref.Version, e.err)
}

func (e *untrustedPolicyError) Unwrap() error { return e.err }

// imaPolicyCache holds verified, compiled policies by the SHA-256 of their
// stored document, bounded by their size; when full, an arbitrary entry
// makes room. Concurrent loads of one version share one load.
type imaPolicyCache struct {
	maxBytes int

	flight singleflight.Group

	mu     sync.Mutex
	bytes  int
	byHash map[[sha256.Size]byte]*cachedPolicy
}

type cachedPolicy struct {
	compiled *imapolicy.Compiled
	until    time.Time
}

func newIMAPolicyCache(maxBytes int) *imaPolicyCache {
	return &imaPolicyCache{maxBytes: maxBytes, byHash: map[[sha256.Size]byte]*cachedPolicy{}}
}

func (c *imaPolicyCache) get(sum []byte, now time.Time) (*imapolicy.Compiled, bool) {
	if len(sum) != sha256.Size {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[[sha256.Size]byte(sum)]
	if !ok || now.After(e.until) {
		return nil, false
	}
	return e.compiled, true
}

func (c *imaPolicyCache) put(sum [sha256.Size]byte, e *cachedPolicy) {
	size := e.compiled.SizeBytes()
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.maxBytes {
		return
	}
	if old, ok := c.byHash[sum]; ok {
		c.bytes -= old.compiled.SizeBytes()
		delete(c.byHash, sum)
	}
	for k, old := range c.byHash {
		if c.bytes+size <= c.maxBytes {
			break
		}
		c.bytes -= old.compiled.SizeBytes()
		delete(c.byHash, k)
	}
	c.byHash[sum] = e
	c.bytes += size
}

// len returns the number of policies held.
func (c *imaPolicyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byHash)
}

// imaPolicy returns the compiled policy of ref: from the cache, or loaded
// and verified. The error is an *untrustedPolicyError when the stored
// version must not be used, another error when it could not be read.
func (s *Service) imaPolicy(ctx context.Context, ref store.IMAPolicyRef, now time.Time) (*imapolicy.Compiled, error) {
	if c, ok := s.imaPolicies.get(ref.SHA256, now); ok {
		return c, nil
	}
	key := fmt.Sprintf("%s/%d/%x", ref.PolicyID, ref.Version, ref.SHA256)
	// The load is shared by every report waiting for it: one report's
	// cancellation does not fail the others.
	v, err, _ := s.imaPolicies.flight.Do(key, func() (any, error) {
		return s.loadIMAPolicy(context.WithoutCancel(ctx), ref, now)
	})
	if err != nil {
		return nil, err
	}
	return v.(*imapolicy.Compiled), nil
}

func (s *Service) loadIMAPolicy(ctx context.Context, ref store.IMAPolicyRef, now time.Time) (*imapolicy.Compiled, error) {
	v, err := s.store.IMAPolicyVersion(ctx, ref.PolicyID, ref.Version)
	if err != nil {
		return nil, err
	}
	untrusted := func(err error) error { return &untrustedPolicyError{ref: ref, err: err} }
	statement, err := report.VerifyIMAPolicy(v.Signature, s.roots, now)
	if err != nil {
		return nil, untrusted(err)
	}
	var st imaPolicyStatement
	if err := json.Unmarshal(statement, &st); err != nil {
		return nil, untrusted(fmt.Errorf("signed statement: %w", err))
	}
	if st.ID != ref.PolicyID || st.Version != ref.Version || st.Digest != documentDigest(v.Document) {
		return nil, untrusted(errors.New("the signature is of another policy, version or document"))
	}
	p, err := imapolicy.Parse(v.Document)
	if err != nil {
		return nil, untrusted(err)
	}
	c, err := imapolicy.Compile(p)
	if err != nil {
		return nil, untrusted(err)
	}
	s.imaPolicies.put(sha256.Sum256(v.Document), &cachedPolicy{compiled: c, until: now.Add(imaPolicyMaxAge)})
	return c, nil
}

// hostPolicies are the runtime policies of one report: the host's
// assignments and the appraisal progress of each policy over the boot's
// IMA log, the previous report's (prior) and this one's (next).
type hostPolicies struct {
	s           *Service
	refs        store.HostIMAPolicies
	prior, next map[string]imapolicy.Progress
	now         time.Time
}

// hostPolicies are the host's runtime policies, from its assignments
// (store.ReportHost); prior is the progress kept with the IMA entries the
// report continues from (nil for a full read of the log).
func (s *Service) hostPolicies(refs store.HostIMAPolicies, prior map[string]imapolicy.Progress, now time.Time) *hostPolicies {
	return &hostPolicies{s: s, refs: refs, prior: prior, next: map[string]imapolicy.Progress{}, now: now}
}

// apply sets on facts the runtime policy of the flavor group, if it has
// one, and appraises the IMA entries the progress does not cover yet. It
// returns the fault that untrusts the IMA part when the policy must not be
// used.
func (hp *hostPolicies) apply(ctx context.Context, groupID string, facts *flavor.Facts) (*appraise.Fault, error) {
	ref, ok := hp.refs.For(groupID)
	if !ok {
		return nil, nil
	}
	s := hp.s
	c, err := s.imaPolicy(ctx, ref, hp.now)
	var untrusted *untrustedPolicyError
	if errors.As(err, &untrusted) {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "ima policy not used", slog.String(keyIMAPolicy, ref.Name),
			slog.Int64(keyIMAPolicyVersion, ref.Version), slog.String(keyError, untrusted.err.Error()))
		return &appraise.Fault{Name: FaultImaPolicyUntrusted, Description: untrusted.Error()}, nil
	} else if err != nil {
		return nil, err
	}
	facts.IMAPolicy = c
	facts.IMAPolicyProgress = hp.prior[c.Digest()]
	facts.AppraiseIMAPolicy()
	hp.next[c.Digest()] = facts.IMAPolicyProgress
	return nil, nil
}

// untrustIMA makes the IMA part untrusted by the policy's fault.
func untrustIMA(ti *flavor.TrustInformation, f appraise.Fault) {
	pt := ti.FlavorsTrust[flavor.PartIMA]
	rule := flavor.RuleResult{Rule: flavor.Rule{Name: RuleImaPolicyTrusted, Markers: []flavor.Part{flavor.PartIMA}},
		Faults: []appraise.Fault{f}}
	ti.FlavorsTrust[flavor.PartIMA] = flavor.PartTrust{Trust: false, Rules: append([]flavor.RuleResult{rule}, pt.Rules...)}
	ti.Overall = false
}
