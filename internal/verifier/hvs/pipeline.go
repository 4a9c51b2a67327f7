package hvs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Fault names of the report pipeline, beside appraise's: the evidence could
// not be had, and why.
const (
	// FaultAikCertificateTrusted: the host has no enrolled AK, or its AK
	// certificate is not trusted; no quote is accepted.
	FaultAikCertificateTrusted = "AikCertificateTrusted"
	// FaultAgentTimeout: the agent did not answer in time.
	FaultAgentTimeout = "AgentTimeout"
	// FaultAgentUnreachable: no agent of the host is connected, or the
	// request failed in transport.
	FaultAgentUnreachable = "AgentUnreachable"
	// FaultAgentBadReply: the agent's reply does not decode.
	FaultAgentBadReply = "AgentBadReply"
	// FaultAgentError: the agent answered with an error of its own.
	FaultAgentError = "AgentError"
	// FaultHardwareUUIDChanged: the agent reports another hardware UUID
	// than the one the host holds.
	FaultHardwareUUIDChanged = "HardwareUUIDChanged"
	// FaultHardwareUUIDInUse: a host that holds no hardware UUID yet
	// reports one that another host holds.
	FaultHardwareUUIDInUse = "HardwareUUIDInUse"
	// FaultHardwareUUIDNotRegistered: a host that holds no hardware UUID
	// yet, whose EK an operator registered with a hardware UUID, reports
	// another one.
	FaultHardwareUUIDNotRegistered = "HardwareUUIDNotRegistered"
)

// errHardwareUUIDTaken: another host took the hardware UUID between the
// check and the commit of a report; the next report names the fault.
var errHardwareUUIDTaken = errors.New("another host took the hardware uuid meanwhile")

// hardwareUUID is the hardware UUID a report or a flavor of host h is
// bound to. The agent's host info is a claim: it is taken only while the
// host holds none (its first report after registration). Once held, a
// different claim changes nothing and is a fault, so that a node cannot
// rebind itself to another host's hardware UUID (and to the flavors and
// lookups bound to it); after a hardware replacement an operator deletes
// the host and registers it again.
func hardwareUUID(h store.Host, hi *evidence.HostInfo) (string, *appraise.Fault) {
	claim := ""
	if hi != nil {
		claim = hi.HardwareUUID
	}
	switch {
	case h.HardwareUUID == "":
		return claim, nil
	case claim == "" || strings.EqualFold(claim, h.HardwareUUID):
		return h.HardwareUUID, nil
	}
	return h.HardwareUUID, &appraise.Fault{Name: FaultHardwareUUIDChanged, Description: fmt.Sprintf(
		"the agent reports hardware UUID %q, the host holds %q (if its hardware was replaced, delete the host and register it again)", claim, h.HardwareUUID)}
}

// claimedHardwareUUID is hardwareUUID, and more, for a host that holds no
// UUID yet. When an operator registered the host's EK with a hardware UUID
// (POST /hvs/v2/tpm-endorsements), that UUID is the host's, and a claim of
// another one is the fault FaultHardwareUUIDNotRegistered. Otherwise the host
// takes the UUID its agent claims only if no other host holds it, so that
// a node cannot take another host's hardware UUID at its first report
// either: a claim another host holds is the fault FaultHardwareUUIDInUse,
// and the host stays without a UUID.
func (s *Service) claimedHardwareUUID(ctx context.Context, h store.Host, hi *evidence.HostInfo) (string, *appraise.Fault, error) {
	hw, fault := hardwareUUID(h, hi)
	if fault != nil || h.HardwareUUID != "" {
		return hw, fault, nil
	}
	registered, err := s.store.RegisteredHardwareUUID(ctx, h.ID)
	switch {
	case err != nil:
		return "", nil, err
	case registered != "" && hw != "" && !strings.EqualFold(hw, registered):
		return "", &appraise.Fault{Name: FaultHardwareUUIDNotRegistered, Description: fmt.Sprintf(
			"the agent reports hardware UUID %q, the host's EK is registered with %q", hw, registered)}, nil
	case registered != "":
		hw = registered
	case hw == "":
		return "", nil, nil
	}
	holders, err := s.store.HostsHoldingHardwareUUID(ctx, h.ID, hw)
	if err != nil {
		return "", nil, err
	}
	if len(holders) > 0 {
		return "", &appraise.Fault{Name: FaultHardwareUUIDInUse, Description: fmt.Sprintf(
			"the agent reports hardware UUID %q, which host %q holds (if the hardware moved, delete that host first)", hw, holders[0])}, nil
	}
	return hw, nil, nil
}

// bootState is what HVS keeps of a host's current boot (store.HostBoot.State):
// where the next incremental IMA read starts, from which PCR 10 value. The
// entries read so far are kept in memory (imaPrefixes), not in the row;
// rows written before hold them as "ima_entries", which is ignored.
type bootState struct {
	IMAOffset int               `json:"ima_offset"`
	IMAValues map[string][]byte `json:"ima_pcr10,omitempty"`
	// kept is the IMA log of the boot up to IMAOffset, from imaPrefixes:
	// its entries, their runtime policy appraisals and the IMA flavors
	// they matched exactly; nil when the whole log is read.
	kept *imaPrefix
}

func decodeBoot(b store.HostBoot) bootState {
	var st bootState
	if !b.Known || len(b.State) == 0 || json.Unmarshal(b.State, &st) != nil || st.IMAOffset < 0 {
		return bootState{}
	}
	return st
}

// collected is the outcome of asking a host for evidence and appraising it:
// a verdict, or the status and faults of why there is none.
type collected struct {
	status  string
	faults  []appraise.Fault
	req     evidence.QuoteRequest
	resp    *evidence.QuoteResponse
	verdict *appraise.Verdict
	// prior is the boot state the request continued from (IMAOffset > 0).
	prior bootState
	// namedRefused: the request named the event log the verifier holds
	// and the agent refused it as a bad request (an agent older than
	// evidence.QuoteRequest.EventLogDigest).
	namedRefused bool
}

func newNonce() ([]byte, error) {
	n := make([]byte, evidence.NonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return n, nil
}

// diskEncryptionPCR is the PCR systemd-cryptsetup measures volume keys
// into; it is quoted whatever the configured PCRs, so that disk encryption
// can be read from evidence.
const diskEncryptionPCR = 15

// quoteRequest asks for the IMA log from offset on and for the event log,
// naming held, the event log the verifier holds an appraisal of for the
// host's boot, when there is one: the agent may then leave it out.
func (s *Service) quoteRequest(offset int, held *appraise.HeldEventLog) (evidence.QuoteRequest, error) {
	nonce, err := newNonce()
	if err != nil {
		return evidence.QuoteRequest{}, err
	}
	pcrs := slices.Clone(s.cfg.PCRs)
	if !slices.Contains(pcrs, diskEncryptionPCR) {
		pcrs = append(pcrs, diskEncryptionPCR)
	}
	req := evidence.QuoteRequest{
		Version: evidence.Version, Nonce: nonce, PCRs: pcrs, Banks: slices.Clone(s.cfg.Banks),
		EventLog: true, IMAMeasureEnabled: true, IMAOffset: offset,
	}
	if held != nil {
		req.EventLogDigest = slices.Clone(held.Digest[:])
	}
	return req, nil
}

// collect asks the host for a fresh quote and appraises it. With
// incremental, the IMA log is read from the offset of the host's current
// boot; a quote that shows another boot is asked for again from 0. The
// request names the event log last appraised in the host's boot
// (eventLogMemo.held), which the agent may then leave out; when that log's
// appraisal against the new quote is not at hand (FaultEventLogNotHeld),
// or the agent refuses the request, the quote is asked for again with the
// whole event log. So a host is asked at most three times, and only once
// more in the usual cases. The error is an infrastructure failure only: an
// unreachable agent or an AK that is not accepted is a collected status
// with faults.
//
// enr is the host's AK enrollment as read with the host
// (store.ReportHost.Enrollment), nil when it was not (verifyAK).
func (s *Service) collect(ctx context.Context, h store.Host, enr *store.AKEnrollment, incremental bool, now time.Time) (collected, error) {
	ak, tpmBanks, err := s.verifyAK(ctx, h.ID, enr)
	var akErr *enroll.AKError
	if errors.As(err, &akErr) {
		return collected{status: report.StatusAIKNotProvisioned, faults: []appraise.Fault{{
			Name: FaultAikCertificateTrusted, Description: err.Error()}}}, nil
	} else if err != nil {
		return collected{}, fmt.Errorf("ak of host %q: %w", h.ID, err)
	}
	var prior bootState
	if incremental {
		prior = decodeBoot(h.Boot)
		if p := s.imaPrefixes.get(h.ID, h.Boot, prior); p != nil {
			prior.kept = p
		} else {
			// The entries of this boot so far are not at hand: read the
			// whole log.
			prior = bootState{}
		}
	}
	held := s.eventLogs.held(h.ID)
	refused := false
	c, err := s.quote(ctx, h.ID, enrolledAK{ak, tpmBanks}, prior, held, now)
	for err == nil {
		// Each retry drops the event log's name, the IMA offset or both,
		// never to name or continue again.
		logFull := c.req.EventLogDigest != nil && (c.namedRefused || c.eventLogNotHeld())
		// An agent that refused the request: ask again without the
		// name first, as an older agent refuses that.
		imaFull := c.req.IMAOffset > 0 && c.retryFull(h.Boot) && !c.namedRefused
		if !logFull && !imaFull {
			break
		}
		if logFull {
			// The agent left out a log the verifier does not hold an
			// appraisal of for this quote, or cannot be asked so.
			held, refused = nil, refused || c.namedRefused
		}
		if imaFull {
			// The incremental read did not work out: the host rebooted
			// since its last verified quote (its IMA log starts over),
			// or the agent refused the offset, or the IMA replay
			// failed. A full read decides.
			prior = bootState{}
		}
		c, err = s.quote(ctx, h.ID, enrolledAK{ak, tpmBanks}, prior, held, now)
	}
	if err == nil {
		s.eventLogs.remember(h.ID, c.verdict, refused)
	}
	return c, err
}

// eventLogNotHeld reports whether the agent left out the event log the
// request named and the verifier holds no appraisal of it for this quote.
func (c collected) eventLogNotHeld() bool {
	return c.verdict != nil && slices.ContainsFunc(c.verdict.Faults, func(f appraise.Fault) bool {
		return f.Name == appraise.FaultEventLogNotHeld
	})
}

// enrolledAK is what enrollment recorded of a host's AK and TPM.
type enrolledAK struct {
	public []byte   // TPMT_PUBLIC
	banks  []string // the TPM's PCR banks at enrollment; nil if not recorded
}

// retryFull reports whether an incremental quote should be asked for again
// with the whole IMA log: not when the agent is unreachable.
func (c collected) retryFull(prev store.HostBoot) bool {
	if c.verdict == nil {
		return c.status != report.StatusConnectionTimeout && c.status != report.StatusConnectionFailure
	}
	if rc, ok := c.verdict.ResetCount(); ok && rc != prev.ResetCount {
		return true
	}
	return slices.ContainsFunc(c.verdict.Faults, func(f appraise.Fault) bool {
		return f.Name == appraise.FaultIMAReplay || f.Name == appraise.FaultIMAUnparsable
	})
}

func (s *Service) quote(ctx context.Context, hostID string, ak enrolledAK, prior bootState, held *appraise.HeldEventLog, now time.Time) (collected, error) {
	req, err := s.quoteRequest(prior.IMAOffset, held)
	if err != nil {
		return collected{}, err
	}
	c := collected{req: req, prior: prior}
	resp, err := s.agent.Quote(ctx, hostID, req)
	if err != nil {
		c.status, c.faults = agentFault(err)
		var ae *agentclient.AgentError
		c.namedRefused = held != nil && errors.As(err, &ae) && ae.Code == evidence.CodeBadRequest
		return c, nil
	}
	v := appraise.Appraise(appraise.Input{AKPublic: ak.public, AK: s.aks.get(ak.public), TPMBanks: ak.banks, Request: req, Response: resp,
		IMAStart: prior.IMAValues, Policy: appraise.Policy{AllowSHA1: s.cfg.AllowSHA1}, EventLogMemo: s.eventLogs, HeldEventLog: held}, now)
	c.status, c.resp, c.verdict = report.StatusConnected, resp, &v
	return c, nil
}

// agentFault gives a failed agent request its host status and fault.
func agentFault(err error) (string, []appraise.Fault) {
	f := func(name string) []appraise.Fault { return []appraise.Fault{{Name: name, Description: err.Error()}} }
	var ae *agentclient.AgentError
	switch {
	case errors.Is(err, agentclient.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return report.StatusConnectionTimeout, f(FaultAgentTimeout)
	case errors.Is(err, agentclient.ErrBadReply):
		return report.StatusConnectionFailure, f(FaultAgentBadReply)
	case errors.As(err, &ae):
		switch ae.Code {
		case evidence.CodeTPMUnavailable:
			return report.StatusTPMNotPresent, f(FaultAgentError)
		case evidence.CodeAKMissing:
			return report.StatusAIKNotProvisioned, f(FaultAgentError)
		}
		return report.StatusConnected, f(FaultAgentError)
	}
	return report.StatusConnectionFailure, f(FaultAgentUnreachable)
}

// ErrNotFound is wrapped by errors about a host, flavor, group or report
// that does not exist.
var ErrNotFound = store.ErrNotFound

// CreateReport attests the host now and returns its stored, signed report.
// Concurrent calls for one host share one quote and one report. The error
// is an infrastructure failure (or ErrNotFound for an unknown host); a host
// that cannot be attested gets an untrusted report that says why.
func (s *Service) CreateReport(ctx context.Context, hostID string) (*report.Report, error) {
	sr, err := s.createSignedReport(ctx, hostID)
	return sr.report, err
}

// signedReport is a report and its compact JWS, as stored.
type signedReport struct {
	report *report.Report
	jws    string
}

// createSignedReport is CreateReport, with the report's JWS.
func (s *Service) createSignedReport(ctx context.Context, hostID string) (signedReport, error) {
	ch := s.flight.DoChan(hostID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ReportTimeout)
		defer cancel()
		start := time.Now()
		var sr signedReport
		var err error
		sr.report, err = s.makeReport(ctx, hostID, &sr.jws)
		if err == nil && s.cfg.Observe != nil {
			s.cfg.Observe(sr.report, time.Since(start))
		}
		return sr, err
	})
	select {
	case <-ctx.Done():
		return signedReport{}, fmt.Errorf("report of host %q: %w", hostID, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return signedReport{}, res.Err
		}
		return res.Val.(signedReport), nil
	}
}

// makeReport reads the host (store.HostForReport) and, unless it is
// disabled, attests it: the quote first, then the host's groups, flavors
// and policies (reportPolicies), so that the report is appraised against
// them as they are once the evidence is in. Then it commits the report,
// and sets *signed to its JWS.
func (s *Service) makeReport(ctx context.Context, hostID string, signed *string) (*report.Report, error) {
	rh, err := s.store.HostForReport(ctx, hostID)
	if err != nil {
		return nil, err
	}
	if err := refuseDisabled(hostID, rh.DisabledAt); err != nil {
		return nil, err
	}
	h := rh.Host
	now := s.cfg.Now()
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("report id: %w", err)
	}
	c, err := s.collect(ctx, h, rh.Enrollment, true, now)
	if err != nil {
		return nil, err
	}
	r, jws, prefix, err := s.appraiseAndCommit(ctx, h, c, id.String(), now, rh.PolicyGeneration)
	if errors.Is(err, store.ErrPoliciesChanged) {
		// The groups, flavors or IMA policies changed after they were
		// read, through this replica or another: the evidence is
		// appraised again, against the stored ones.
		r, jws, prefix, err = s.appraiseAndCommit(ctx, h, c, id.String(), now, 0)
	}
	if err != nil {
		return nil, err
	}
	if prefix != nil {
		s.imaPrefixes.put(h.ID, prefix)
	}
	logger := s.logger.With(slog.String(keyHost, h.ID), slog.String(keyReport, r.ID))
	logger.LogAttrs(ctx, slog.LevelInfo, "report", slog.Bool(keyTrusted, r.Trusted()),
		slog.String(keyStatus, r.HostStatus), slog.Any(keyFaults, faultNames(r)))
	s.publish(ctx, logger, h.ID, jws)
	*signed = jws
	return r, nil
}

// appraiseAndCommit makes the report of host h from what was collected,
// signs it and commits it with the host's outcome; it returns the report,
// its JWS and the IMA prefix to keep of the boot. At policy generation gen
// (from HostForReport) it appraises against the policies kept at gen and
// commits only if gen is still the generation (or else fails with
// store.ErrPoliciesChanged, storing nothing); at gen 0 against the stored
// policies, whatever changes meanwhile, as a report did before policies
// were kept.
func (s *Service) appraiseAndCommit(ctx context.Context, h store.Host, c collected, id string, now time.Time, gen int64) (*report.Report, string, *imaPrefix, error) {
	r := &report.Report{
		ID: id, HostID: h.ID, HostName: h.Name, Created: now, Expiration: now.Add(s.cfg.ReportValidity),
		TrustInformation: flavor.TrustInformation{FlavorsTrust: map[flavor.Part]flavor.PartTrust{}},
	}
	r.HostStatus = c.status
	r.HostInfo = report.NewHostInfo(nil, appraise.SecureBootState{}, false)
	r.HostInfo.HostName = h.Name
	r.HostInfo.HardwareUUID = h.HardwareUUID
	var boot *store.HostBoot
	var prefix *imaPrefix
	var checkGen int64
	hwUUID := h.HardwareUUID
	if v := c.verdict; v == nil {
		r.Faults = c.faults
	} else {
		r.Nonce = c.req.Nonce
		r.Faults = slices.Clone(v.Faults)
		facts := flavor.FactsFromVerdict(v)
		if facts.IMAReplayed && c.req.IMAOffset > 0 {
			// The IMA flavors the kept prefix matched exactly need check
			// only the new entries.
			facts.IMAEntries = c.prior.kept.extend(facts.IMAEntries)
			facts.IMAFlavorsMatched = c.prior.kept.flavors
		}
		var changed *appraise.Fault
		var err error
		if hwUUID, changed, err = s.claimedHardwareUUID(ctx, h, c.resp.HostInfo); err != nil {
			return nil, "", nil, err
		} else if changed != nil {
			r.Faults = append(r.Faults, *changed)
		}
		pol, err := s.reportPolicies(ctx, h.ID, hwUUID, gen)
		if err != nil {
			return nil, "", nil, err
		}
		if gen != 0 {
			checkGen = pol.Generation
		}
		policies := s.hostPolicies(pol.IMAPolicies, c.prior.kept.progress(), now)
		ti, matched, err := s.evaluate(ctx, pol, facts, policies)
		if err != nil {
			return nil, "", nil, err
		}
		r.TrustInformation = ti
		r.HostInfo = report.NewHostInfo(c.resp.HostInfo, v.SecureBoot, secureBootVerified(v, facts))
		r.HostInfo.HardwareUUID = hwUUID
		r.HostInfo.SetDiskEncryption(v.DiskEncryption)
		if rc, ok := v.ResetCount(); ok {
			r.ResetCount = rc
			r.Rebooted = h.Boot.Known && rc != h.Boot.ResetCount
			b, p := nextBoot(h.Boot, c, facts, now)
			boot, prefix = &b, p
			if p != nil {
				p.policies, p.flavors = policies.next, matched
			}
		}
	}
	if len(r.Faults) > 0 {
		// Readers of trust_information alone must not see a trusted host.
		r.TrustInformation.Overall = false
	}
	key, err := s.signingKey(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	jws, body, err := key.report.SignedJSON(r)
	if err != nil {
		return nil, "", nil, fmt.Errorf("report of host %q: %w", h.ID, err)
	}
	// A trusted report of the same boot is made again at the next poll: its
	// commit need not wait for the disk. An untrusted one, or a new boot,
	// is synced: a power loss must neither bring back the host's last
	// trusted report nor let the next report count the same reboot again
	// (which would rebaseline golden flavors a second time).
	deferred := deferSync(r.Trusted(), h.Boot, boot)
	// A report from the agent's evidence is a success.
	outcome := store.HostReported{Status: r.HostStatus, At: now, Success: c.verdict != nil, Boot: boot, PolicyGeneration: checkGen}
	if hwUUID != h.HardwareUUID {
		outcome.HardwareUUID = hwUUID
	}
	rec := store.Report{ID: r.ID, HostID: h.ID, HostName: h.Name, Trusted: r.Trusted(),
		CreatedAt: r.Created, ExpiresAt: r.Expiration, JSON: body, JWS: jws}
	var disabledAt time.Time
	if outcome.HardwareUUID == "" {
		disabledAt, err = s.store.CommitReportAlone(ctx, rec, outcome, deferred)
	} else {
		commit := s.store.InTx
		if deferred {
			commit = s.store.InTxDeferredSync
		}
		err = commit(ctx, func(tx *store.Tx) error {
			// Checked before the report was signed; checked again here,
			// where a host taking it meanwhile is seen.
			holders, err := tx.HostsHoldingHardwareUUID(ctx, h.ID, outcome.HardwareUUID)
			if err != nil {
				return err
			}
			if len(holders) > 0 {
				return fmt.Errorf("report of host %q: hardware uuid %q: %w", h.ID, outcome.HardwareUUID, errHardwareUUIDTaken)
			}
			disabledAt, err = tx.CommitReport(ctx, rec, outcome)
			return err
		})
	}
	if err == nil {
		err = refuseDisabled(h.ID, disabledAt) // disabled while the report was made: nothing was stored
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("store report of host %q: %w", h.ID, err)
	}
	return r, jws, prefix, nil
}

// publish sends the report's JWS on trust-reports.<host-id>. A failure is
// logged: the report is stored and can be read.
func (s *Service) publish(ctx context.Context, logger *slog.Logger, hostID, jws string) {
	if s.publisher == nil {
		return
	}
	subject, err := bus.ReportSubject(hostID)
	if err == nil {
		err = s.publisher.Publish(subject, []byte(jws))
	}
	if err != nil {
		logger.LogAttrs(ctx, slog.LevelWarn, "publish report", slog.String(keyError, err.Error()))
	}
}

// faultNames lists the report's evidence faults and the faults of its parts.
func faultNames(r *report.Report) []string {
	var names []string
	for _, f := range r.Faults {
		names = append(names, f.Name)
	}
	for _, p := range flavor.Parts() {
		for _, rule := range r.TrustInformation.FlavorsTrust[p].Rules {
			for _, f := range rule.Faults {
				names = append(names, string(p)+":"+f.Name)
			}
		}
	}
	return names
}

// secureBootVerified: the Secure Boot state was read from PCR 7 events that
// replayed to the quoted PCR 7.
func secureBootVerified(v *appraise.Verdict, facts flavor.Facts) bool {
	if v.Quote == nil || v.SecureBoot.Bank == "" || !facts.Replayed[v.SecureBoot.Bank][7] {
		return false
	}
	return !slices.ContainsFunc(v.Faults, func(f appraise.Fault) bool { return f.Name == appraise.FaultSecureBootUnparsable })
}

// deferSync says whether a report's commit may skip waiting for the disk:
// only a trusted report that stays in the boot the store already holds.
func deferSync(trusted bool, prev store.HostBoot, next *store.HostBoot) bool {
	if !trusted || next == nil {
		return false
	}
	return prev.Known && next.ResetCount == prev.ResetCount
}

// nextBoot is the host's boot after a verified quote: a new reset count
// starts a new boot (a reboot when one was known); the IMA state moves on
// when the IMA log replayed, and stays put otherwise. The prefix is the IMA
// log of the boot up to the new state, nil when the state stays put.
func nextBoot(prev store.HostBoot, c collected, facts flavor.Facts, now time.Time) (store.HostBoot, *imaPrefix) {
	rc, _ := c.verdict.ResetCount()
	same := prev.Known && rc == prev.ResetCount
	b := store.HostBoot{Known: true, ResetCount: rc, RebootedAt: prev.RebootedAt, State: prev.State}
	if !same {
		b.State = nil
		if prev.Known {
			b.RebootedAt = now
		}
	}
	v := c.verdict
	if !facts.IMAReplayed || v.IMANextValue == nil {
		return b, nil
	}
	bank := v.IMA.Bank // the bank appraise replayed, whose value it gave
	st := bootState{IMAOffset: v.IMANextOffset, IMAValues: map[string][]byte{bank: v.IMANextValue}}
	enc, err := json.Marshal(st)
	if err != nil {
		return b, nil
	}
	b.State = enc
	return b, &imaPrefix{resetCount: rc, offset: v.IMANextOffset, bank: bank, value: v.IMANextValue, entries: facts.IMAEntries}
}

// evaluate appraises the facts against every group of the host, each with
// its runtime policy; a part evaluated by several groups must be trusted by
// each. It also returns the IMA flavors the facts' IMA entries matched
// exactly (flavor.IMAMatched), for the next report of the boot.
func (s *Service) evaluate(ctx context.Context, pol store.ReportPolicies, facts flavor.Facts, policies *hostPolicies) (flavor.TrustInformation, map[[sha256.Size]byte]int, error) {
	now := policies.now
	ti := flavor.TrustInformation{FlavorsTrust: map[flavor.Part]flavor.PartTrust{}}
	var matched map[[sha256.Size]byte]int
	overall := len(pol.Groups) > 0
	for _, rec := range pol.Groups {
		gid := rec.ID
		g, err := s.policies.groups.decode(rec)
		if err != nil {
			return ti, nil, err
		}
		refs := pol.FlavorRefs[gid]
		flavors := make([]flavor.Checked, 0, len(refs))
		for _, ref := range refs {
			if len(ref.SignedSHA256) == sha256.Size {
				if c, ok := s.flavors.Get([sha256.Size]byte(ref.SignedSHA256), now); ok {
					flavors = append(flavors, c)
					continue
				}
			}
			signed, err := s.store.FlavorSigned(ctx, ref.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since
			} else if err != nil {
				return ti, nil, err
			}
			// A stored flavor that does not decode is kept with its ID
			// only: FlavorTrusted fails on it.
			flavors = append(flavors, s.flavors.Load(ref.ID, flavor.Part(ref.Part), signed, now))
		}
		gfacts := facts
		untrusted, err := policies.apply(ctx, gid, &gfacts)
		if err != nil {
			return ti, nil, err
		}
		gti, err := flavor.EvaluateChecked(g, flavors, gfacts)
		if err != nil {
			return ti, nil, fmt.Errorf("flavor group %q: %w", g.Name, err)
		}
		for d, n := range flavor.IMAMatched(gti, flavors, gfacts) {
			if matched == nil {
				matched = map[[sha256.Size]byte]int{}
			}
			matched[d] = n
		}
		if untrusted != nil {
			untrustIMA(&gti, *untrusted)
		}
		overall = overall && gti.Overall
		for p, pt := range gti.FlavorsTrust {
			if prev, ok := ti.FlavorsTrust[p]; ok {
				pt = flavor.PartTrust{Trust: prev.Trust && pt.Trust, Rules: append(prev.Rules, pt.Rules...)}
			}
			ti.FlavorsTrust[p] = pt
		}
	}
	ti.Overall = overall && len(ti.FlavorsTrust) > 0
	return ti, matched, nil
}

// groupRecord and decodeGroup convert between a flavor group and its row.
func groupRecord(g flavor.Group, now time.Time) (store.FlavorGroup, error) {
	if err := g.Validate(); err != nil {
		return store.FlavorGroup{}, err
	}
	b, err := json.Marshal(g.MatchPolicies)
	if err != nil {
		return store.FlavorGroup{}, err
	}
	return store.FlavorGroup{ID: g.ID, Name: g.Name, Policies: b, CreatedAt: now}, nil
}

func decodeGroup(rec store.FlavorGroup) (flavor.Group, error) {
	g := flavor.Group{ID: rec.ID, Name: rec.Name}
	if err := json.Unmarshal(rec.Policies, &g.MatchPolicies); err != nil {
		return flavor.Group{}, fmt.Errorf("flavor group %q: stored policies: %w", rec.Name, err)
	}
	return g, nil
}
