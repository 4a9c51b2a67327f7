package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/report"
)

// evaluate runs one attestation round of a node and schedules its next one.
// Only ReconcileNode calls it, never twice at once for one node. It returns
// an error only when acting on the Node failed: the node is due again at
// once and the caller retries it rate-limited. A verifier that cannot be
// reached is no error here: the node is scheduled again after RetryMin,
// doubling up to its poll duration.
func (m *Manager) evaluate(ctx context.Context, st *nodeState, why trigger) error {
	n := st.node
	log := m.log.With(slog.String(keyNode, n.Name), slog.String(keyHostID, n.HostID))
	first := !st.seen
	st.seen = true
	if why == triggerDrift {
		m.reassert(ctx, st, log)
		return nil
	}
	if why == triggerClaimPutOff {
		if st.want != nil && !st.want.ready && st.want.status != cluster.StatusVerified {
			// Neither ready nor Verified (withdrawn already, or failed and
			// cordoned): nothing to take back, and no write, Event or log
			// line a change.
			return nil
		}
		msg := "the node changed the host it claims again before its turn; the new claim is attested at " + st.next.UTC().Format(time.RFC3339)
		log.Warn("host claim put off", slog.String(keyReason, msg))
		m.withdraw(ctx, st, cluster.ReasonHostClaimChanged, msg, "", log)
		return nil
	}
	if reason, msg := claimFault(n.HostID); reason != "" {
		log.Warn("cannot attest node", slog.String(keyReason, msg))
		if trusted(st.node) {
			// The verdict is about the host the node claimed before, whose
			// reports no longer reach it: it goes (fail closed).
			m.withdraw(ctx, st, reason, msg, "", log)
		} else if err := m.nodes.Pending(ctx, n.Name, reason, msg); err != nil {
			log.Warn("marking node pending failed", slog.Any(keyErr, err))
		}
		m.schedule(st, m.jittered(m.interval(st)))
		return nil
	}
	var err error
	if why == triggerOnboard || (n.OnboardRequested && why != triggerEvent) {
		err = m.onboard(ctx, st, log)
	} else {
		err = m.attest(ctx, st, why, first, log)
	}
	if err == nil {
		st.failures = 0
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, ErrHostClaimed) {
		// Not an outage: the node claims a host bound to another node (or
		// moved to another host id). It gets no verdict, and the EIM is
		// not told: its host GUID is the claimed one, another node's.
		m.schedule(st, m.jittered(m.interval(st)))
		log.Warn("host claim refused", slog.Any(keyErr, err))
		m.withdraw(ctx, st, ReasonHostClaimRefused, "host claim refused: "+err.Error(), "", log)
		return nil
	}
	var ve *VerifierError
	if !errors.As(err, &ve) {
		// The Kubernetes API refused or failed a write: try again, at the
		// pace of the caller's rate limiter.
		st.next = m.clock.Now()
		log.Error("acting on attestation failed", slog.String(keyTrigger, string(why)), slog.Any(keyErr, err))
		return err
	}
	st.failures++
	retry := min(m.cfg.RetryMin<<min(st.failures-1, 20), m.interval(st))
	m.schedule(st, m.jittered(retry))
	log = log.With(slog.String(keyTrigger, string(why)), slog.Time(keyNext, st.next))
	if trusted(st.node) && st.verdictHost != "" && st.verdictHost != st.node.HostID {
		// The node changed the host it claims, and the new claim could not
		// be attested: the verdict is about the host claimed before, whose
		// reports no longer reach the node, outage or not.
		msg := "the node changed the host it claims and the new claim could not be attested: " + err.Error()
		log.Warn("verdict withdrawn: new host claim not attested", slog.Any(keyErr, err))
		m.withdraw(ctx, st, cluster.ReasonHostClaimChanged, msg, "", log)
		return nil
	}
	now := m.clock.Now()
	stale := m.stale(st, now)
	var msg string
	if stale {
		last := "of unknown age (none read since the manager started)"
		if !st.evidenceAt.IsZero() {
			last = "from " + st.evidenceAt.UTC().Format(time.RFC3339)
		}
		msg = fmt.Sprintf("verifier unreachable and the last evidence is %s, older than maxEvidenceAge %s", last, m.cfg.MaxEvidenceAge)
	}
	if trusted(st.node) && stale {
		// No cordon: an outage of the verifier must not drain the fleet.
		// But a node is not Verified nor ready on evidence this old.
		log.Warn("verdict withdrawn: evidence too old", slog.Any(keyErr, err))
		m.withdraw(ctx, st, ReasonVerifierUnreachable, msg+": "+err.Error(), "Attestation stale: "+msg, log)
		return nil
	}
	switch w := st.want; {
	case !stale:
	case w != nil && w.status == cluster.StatusUnknown && w.reason == ReasonVerifierUnreachable:
		// Withdrawn for this outage: the EIM may have missed it. (Only a
		// withdrawal this process made says so: a Node is unknown too when
		// its claim of another node's host was refused, and that host is
		// not its to report on.)
		m.tellEIMStale(st, "Attestation stale: "+msg, false, log)
	case w == nil && st.node.Status != cluster.StatusPending && st.node.Status != "":
		// Started during the outage, on a Node a predecessor left
		// untrusted (a pending one was never decided): its update to the
		// EIM may have been lost with it. The Node's failure, if it says
		// one, goes along: the EIM says FAILED either way.
		detail := "Attestation stale: " + msg
		if s := st.node.Status; s == cluster.StatusAttestationFailed || s == cluster.StatusSecureBootDisabled {
			detail += "; the Node's last verdict: " + string(s)
		}
		m.tellEIMStale(st, detail, false, log)
	}
	log.Warn("no attestation result: verifier unreachable", slog.Any(keyErr, err))
	if perr := m.nodes.Pending(ctx, n.Name, ReasonVerifierUnreachable, "verifier unreachable: "+err.Error()); perr != nil {
		log.Warn("marking node pending failed", slog.Any(keyErr, perr))
	}
	return nil
}

// withdraw takes back the node's Verified and ready without cordoning it
// (cluster.Nodes.Withdraw) and, when eimDetail is set and the Node changed,
// tells the EIM the node is not verified any more.
func (m *Manager) withdraw(ctx context.Context, st *nodeState, reason, message, eimDetail string, log *slog.Logger) {
	changed, err := m.nodes.Withdraw(ctx, st.node.Name, reason, message)
	if err != nil {
		log.Warn("withdrawing the verdict failed", slog.Any(keyErr, err))
		return
	}
	switch st.node.Status {
	case cluster.StatusVerified, cluster.StatusPending, "":
		st.node.Status = cluster.StatusUnknown
	}
	st.node.Ready = false
	if st.want == nil || st.want.status == cluster.StatusVerified || st.want.status == cluster.StatusUnknown {
		st.want = &verdict{status: cluster.StatusUnknown, reason: reason, message: message}
	}
	st.drift = false
	if eimDetail != "" {
		m.tellEIMStale(st, eimDetail, changed, log)
	}
	if h := st.verdictHost; m.sink != nil && h != "" && h != st.node.HostID && st.leftTold != h {
		// The node no longer claims the host of its verdict, which was its
		// own (a host is bound to one node): the EIM said that verdict,
		// and nothing attests that host any more.
		if err := m.sink.Notify(h, eim.StatusFailed, "Attestation stale: the node no longer claims this host: "+message); err != nil {
			log.Warn("eim notification not queued", slog.Any(keyErr, err))
			return
		}
		st.leftTold = h
	}
}

// tellEIMStale tells the EIM that the node's verdict is stale: at once when
// now is true, else unless it was told within the node's poll duration.
// While the verifier stays unreachable it is said again about once a poll
// duration: one update may be lost (the EIM unreachable too, or its queue
// full), and the EIM would then say VERIFIED for the whole outage.
func (m *Manager) tellEIMStale(st *nodeState, detail string, now bool, log *slog.Logger) {
	at := m.clock.Now()
	if m.sink == nil || (!now && !st.staleToldAt.IsZero() && at.Sub(st.staleToldAt) < m.interval(st)) {
		return
	}
	if st.verdictHost != "" && st.verdictHost != st.node.HostID {
		// The Node claims another host id since its verdict: the stale
		// verdict is not about that host, perhaps another node's.
		return
	}
	if err := m.sink.Notify(st.node.HostID, eim.StatusFailed, detail); err != nil {
		log.Warn("eim notification not queued", slog.Any(keyErr, err))
		return
	}
	st.staleToldAt = at
}

// reassert makes the Node say the last verdict again after someone changed
// its labels, taint or cordon. A Verified verdict whose evidence is too old
// is not repeated: the node is attested now instead.
func (m *Manager) reassert(ctx context.Context, st *nodeState, log *slog.Logger) {
	w := st.want
	st.drift = false
	if w == nil {
		return
	}
	log = log.With(slog.String(keyStatus, string(w.status)))
	var err error
	switch w.status {
	case cluster.StatusVerified:
		if m.stale(st, m.clock.Now()) {
			st.next = m.clock.Now()
			return
		}
		err = m.nodes.MarkVerified(ctx, st.node.Name, w.ready, w.reportID, w.message)
	case cluster.StatusUnknown:
		_, err = m.nodes.Withdraw(ctx, st.node.Name, w.reason, w.message)
	default:
		_, err = m.nodes.MarkFailed(ctx, st.node.Name, w.status, w.parts, w.reportID, w.message)
	}
	if err != nil {
		log.Warn("reverting the node's drift failed", slog.Any(keyErr, err))
		st.drift = true
		return
	}
	log.Warn("the node no longer said the verdict: reverted",
		slog.String("had_status", string(st.node.Status)), slog.Bool("had_ready", st.node.Ready))
	st.node.Status, st.node.Ready = w.status, w.ready
	if w.status != cluster.StatusVerified && w.status != cluster.StatusUnknown {
		st.node.Cordoned, st.node.Tainted = true, true
	}
}

// attest gets a report of the node that this process has not acted on,
// re-baselines first when the golden flavor policy asks for it, and acts on
// the decision.
//
// The verifier's latest report is read first. At the first evaluation after
// a start and for a published report, a latest report that this process
// acted on, or, before it acted on any, one that the Node already names
// (AnnotationLastReport: a previous run of the manager acted on it) with the
// report's verdict, is not acted on again; any other is acted on.
// On schedule, and when there is nothing to act on, a fresh report is made.
// A latest report untrusted only because the host had no flavors when it was
// made (flavorless) is never acted on: a fresh report is, whatever it says.
func (m *Manager) attest(ctx context.Context, st *nodeState, why trigger, first bool, log *slog.Logger) error {
	id, err := m.register(ctx, st)
	if err != nil {
		return err
	}
	now := m.clock.Now()
	latest, err := m.v.LatestReport(ctx, id)
	if err != nil {
		return verr("latest report", err)
	}
	if latest != nil && latest.HostID != id {
		latest = nil
	}
	// The Node's annotation is the node's to write (the kubelet's
	// credentials may). It stands in for this process's memory only while
	// that is empty (after a start), and marks a report as acted on only
	// where the Node's verdict agrees with the report's: a node still
	// Verified that names a failing report there must not keep the failure
	// from being acted on.
	acted := latest != nil && (latest.ID == st.lastActed ||
		(st.lastActed == "" && latest.ID == st.node.LastReport && latest.Trusted() == trusted(st.node)))
	if acted && !st.resetKnown && quoted(latest) {
		st.resetCount, st.resetKnown = latest.ResetCount, true
	}
	if acted && latest.Created.After(st.evidenceAt) {
		st.evidenceAt = latest.Created
	}
	if acted && why != triggerSchedule && (!trusted(st.node) || !m.stale(st, now)) {
		if first {
			// Resume the schedule from that report; if it is overdue,
			// spread the overdue nodes over the jitter window.
			st.next = latest.Created.Add(m.jittered(m.interval(st)))
			if !st.next.After(now) {
				st.next = now.Add(time.Duration(m.rnd() * m.cfg.Jitter * float64(m.interval(st))))
			}
			m.clampNext(st)
		}
		return nil
	}
	// A report not acted on yet was made by the verifier on its own (after
	// a boot or IMA event of the agent). Act on it unless it is stale
	// (expired, or older than MaxEvidenceAge, which may be shorter than the
	// verifier's report validity) or it is time for a fresh one; in all
	// cases keep its reboot, even if its NATS notice was missed.
	var r *report.Report
	missedReboot := false
	if latest != nil && !acted {
		missedReboot = latest.Rebooted
		if why != triggerSchedule && !expired(latest, now) && now.Sub(latest.Created) < m.cfg.MaxEvidenceAge {
			r = latest
		}
	}
	fresh := r == nil
	if fresh {
		if r, err = m.createReport(ctx, id); err != nil {
			return err
		}
	}
	// Before a re-baseline: a host whose agent runs on another Node is not
	// this node's to re-baseline.
	if err := m.cfg.NodeBinding.boundTo(r, st.node.Name); err != nil {
		return err
	}
	reboot := r.Rebooted || missedReboot || (quoted(r) && st.resetKnown && r.ResetCount != st.resetCount)
	if quoted(r) {
		st.resetCount, st.resetKnown = r.ResetCount, true
	}
	baseline, err := m.needBaseline(ctx, st, id, reboot)
	if err != nil {
		return err
	}
	again := baseline
	if baseline {
		if err := m.v.Rebaseline(ctx, id, BaselineParts); err != nil {
			return verr("rebaseline", err)
		}
		st.flavorsKnown, st.hasFlavors = true, true
		log.Info("golden flavors re-baselined", slog.String(keyReportID, r.ID),
			slog.Bool("rebooted", reboot), slog.Any(keyParts, BaselineParts))
		m.flavorsReplaced(ctx, st, r, log)
	} else if !fresh && flavorless(r) {
		// The verifier attested the host before it had flavors (its
		// refresh or an agent event right after the registration, or an
		// appraisal that read the flavors before a re-baseline). The
		// evidence was never appraised against golden flavors, and they
		// may exist by now: which ones the verifier applies (bound to the
		// host, to its hardware UUID, fleet-wide, in each of its groups)
		// only the verifier knows, so it is asked again, and its answer is
		// acted on whatever it says: a host without flavors still fails.
		log.Info("report made without flavors not acted on: attesting again", slog.String(keyReportID, r.ID))
		again = true
	}
	if again {
		if r, err = m.createReport(ctx, id); err != nil {
			return err
		}
		if quoted(r) {
			st.resetCount, st.resetKnown = r.ResetCount, true
		}
	}
	m.schedule(st, m.jittered(m.interval(st)))
	return m.act(ctx, st, r, false, log)
}

// claimFault says why a node's claimed host id cannot be attested, with a
// reason of Pending or Withdraw, or "" when it can. A claim the bus could
// not name (bus.ValidateHostID) is refused here: the verifier would refuse
// it too, and the manager took its refusal for an outage.
func claimFault(hostID string) (reason, message string) {
	if hostID == "" {
		return ReasonHostIDMissing, "node has neither a system UUID nor the annotation " + cluster.AnnotationHostID
	}
	if err := bus.ValidateHostID(hostID); err != nil {
		return ReasonHostIDInvalid, "node claims a host id that cannot name a host: " + err.Error()
	}
	return "", ""
}

// flavorsReplaced leaves an operator's trail when a re-baseline replaced
// golden flavors that r, the boot's report before it, failed: which parts
// this boot measured otherwise than the flavors it replaced (a Warning
// Event on the Node, ReasonGoldenFlavorsReplaced, and the log). Under
// goldenFlavors everyBoot that is how a legitimate update looks, and also
// root on the node that changed what it boots and rebooted: the node is
// Verified again, but not silently. A report that failed for anything but
// its flavor parts (an evidence fault, Secure Boot off) or that had no
// flavors to fail says nothing of what changed and leaves no trail.
func (m *Manager) flavorsReplaced(ctx context.Context, st *nodeState, r *report.Report, log *slog.Logger) {
	if r.Trusted() || len(r.Faults) > 0 || flavorless(r) {
		return
	}
	d := m.cfg.Decide(r)
	if d.Status != StatusAttestationFailed || len(d.Parts) == 0 {
		return
	}
	msg := fmt.Sprintf("this boot measured %s otherwise than the golden flavors (report %s: %s); goldenFlavors %s made its measurements the golden flavors",
		strings.Join(d.Parts, ", "), r.ID, d.Message, m.cfg.GoldenFlavors)
	log.Warn("golden flavors replaced by a boot that differed from them", slog.String(keyReportID, r.ID), slog.Any(keyParts, d.Parts))
	if err := m.nodes.FlavorsReplaced(ctx, st.node.Name, r.ID, msg); err != nil {
		log.Warn("recording the replaced golden flavors failed", slog.Any(keyErr, err))
	}
}

// flavorless tells whether r is untrusted only because the host had no
// flavors to appraise it against when it was made: the agent answered (a
// quote, no evidence fault), Secure Boot was not found off, and every
// untrusted part failed only the rule RequiredFlavorTypeExists (fault
// FlavorMissing), or no part was evaluated at all. Such a report says
// nothing about the host's measurements. A report with any other fault is
// not flavorless.
func flavorless(r *report.Report) bool {
	if r.Trusted() || !quoted(r) || len(r.Faults) > 0 {
		return false
	}
	if sb := r.HostInfo.SecureBoot; sb.Verified && !r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled {
		return false
	}
	for _, pt := range r.TrustInformation.FlavorsTrust {
		if pt.Trust {
			continue
		}
		if len(pt.Rules) == 0 {
			return false
		}
		for _, rr := range pt.Rules {
			if rr.Rule.Name != flavor.RuleRequiredFlavorTypeExists || len(rr.Faults) == 0 {
				return false
			}
			for _, f := range rr.Faults {
				if f.Name != flavor.FaultFlavorMissing {
					return false
				}
			}
		}
	}
	return true
}

// onboard re-onboards a node after an operator fixed it: re-baseline (unless
// flavors are provided), attest, and only if Verified lift the cordon. A
// failing attestation leaves the node cordoned; the request stays and is
// tried again at the node's next poll time.
func (m *Manager) onboard(ctx context.Context, st *nodeState, log *slog.Logger) error {
	st.onboardTried = true
	id, err := m.register(ctx, st)
	if err != nil {
		return err
	}
	log.Info("re-onboarding requested")
	if m.cfg.GoldenFlavors != Provided {
		if err := m.v.Rebaseline(ctx, id, BaselineParts); err != nil {
			return verr("rebaseline", err)
		}
		st.flavorsKnown, st.hasFlavors = true, true
	}
	r, err := m.createReport(ctx, id)
	if err != nil {
		return err
	}
	if quoted(r) {
		st.resetCount, st.resetKnown = r.ResetCount, true
	}
	m.schedule(st, m.jittered(m.interval(st)))
	return m.act(ctx, st, r, true, log)
}

// register makes sure the node's host is registered in the verifier and
// returns its verifier id.
func (m *Manager) register(ctx context.Context, st *nodeState) (string, error) {
	if st.verifierID != "" && st.registeredFor == st.node.HostID {
		return st.verifierID, nil
	}
	id, err := m.v.RegisterHost(ctx, st.node.Name, st.node.HostID)
	if err != nil {
		return "", verr("register host", err)
	}
	if id == "" {
		return "", verr("register host", errors.New("no host id returned"))
	}
	st.verifierID, st.registeredFor = id, st.node.HostID
	m.mu.Lock()
	m.byHost[strings.ToLower(id)] = st.node.Name
	m.mu.Unlock()
	return id, nil
}

func (m *Manager) createReport(ctx context.Context, id string) (*report.Report, error) {
	r, err := m.v.CreateReport(ctx, id)
	if err != nil {
		return nil, verr("create report", err)
	}
	switch {
	case r == nil:
		return nil, verr("create report", errors.New("no report returned"))
	case r.HostID != id:
		return nil, verr("create report", fmt.Errorf("report %s is of host %q, not %q", r.ID, r.HostID, id))
	case expired(r, m.clock.Now()):
		return nil, verr("create report", fmt.Errorf("report %s expired at %s", r.ID, r.Expiration.UTC().Format(time.RFC3339)))
	}
	return r, nil
}

// needBaseline applies the golden flavor policy.
func (m *Manager) needBaseline(ctx context.Context, st *nodeState, id string, reboot bool) (bool, error) {
	switch m.cfg.GoldenFlavors {
	case Provided:
		return false, nil
	case EveryBoot:
		if reboot {
			return true, nil
		}
	}
	if st.flavorsKnown && st.hasFlavors && !reboot {
		return false, nil
	}
	has, err := m.v.HasAutomaticFlavors(ctx, id)
	if err != nil {
		return false, verr("flavors", err)
	}
	st.flavorsKnown, st.hasFlavors = true, has
	return !has, nil
}

// act decides on r and makes the node and the EIM say so.
func (m *Manager) act(ctx context.Context, st *nodeState, r *report.Report, onboarding bool, log *slog.Logger) error {
	n := st.node
	if err := m.cfg.NodeBinding.boundTo(r, n.Name); err != nil {
		return err
	}
	d := m.cfg.Decide(r)
	log = log.With(slog.String(keyReportID, r.ID), slog.String(keyStatus, string(d.Status)))
	evidenceAt := r.Created
	if evidenceAt.IsZero() {
		evidenceAt = m.clock.Now()
	}
	wasFailed := n.Cordoned && (n.Status == cluster.StatusAttestationFailed || n.Status == cluster.StatusSecureBootDisabled)
	if d.Status == StatusVerified && wasFailed && !onboarding {
		// Nothing clears a failure by itself: a node that failed stays failed
		// and cordoned, in Kubernetes and in the EIM, until an operator
		// re-onboards it, even when a later report passes.
		log.Info("attestation passes again; the node stays failed and cordoned until it is re-onboarded")
		st.lastActed, st.node.LastReport, st.evidenceAt = r.ID, r.ID, evidenceAt
		m.clampNext(st)
		return nil
	}
	m.notify(n.HostID, d, log)
	st.staleToldAt = time.Time{}
	var err error
	switch d.Status {
	case StatusVerified:
		if onboarding {
			err = m.nodes.Onboarded(ctx, n.Name, d.Ready, r.ID)
			if err == nil {
				st.node.OnboardRequested = false
				st.node.Status, st.node.Ready = cluster.StatusVerified, d.Ready
				log.Info("node re-onboarded", slog.Bool(keyReady, d.Ready))
			}
		} else {
			err = m.nodes.MarkVerified(ctx, n.Name, d.Ready, r.ID, d.Message)
			if err == nil {
				st.node.Status, st.node.Ready = cluster.StatusVerified, d.Ready
				log.Info("node verified", slog.Bool(keyReady, d.Ready), slog.String(keyReason, d.Message))
			}
		}
	default:
		var changed bool
		changed, err = m.nodes.MarkFailed(ctx, n.Name, clusterStatus(d.Status), d.Parts, r.ID, d.Message)
		if err != nil {
			break
		}
		log.Warn("node failed attestation", slog.Any(keyParts, d.Parts), slog.String(keyReason, d.Message),
			slog.Bool("changed", changed), slog.Bool("onboarding", onboarding))
		if changed && !wasFailed && m.onCordon != nil {
			m.onCordon(n.Name, clusterStatus(d.Status))
		}
		st.node.Status, st.node.Cordoned, st.node.Ready = clusterStatus(d.Status), true, false
		// Evict once per failure, not at every failing report: a restarted
		// manager sees the Node already failed and cordoned.
		if changed && len(m.cfg.EvictNamespaces) > 0 && (!wasFailed || st.evictPending) {
			st.evictPending = !m.evict(ctx, n.Name, log)
		}
	}
	if err != nil {
		return fmt.Errorf("node %s, report %s: %w", n.Name, r.ID, err)
	}
	st.lastActed, st.node.LastReport, st.evidenceAt, st.verdictHost = r.ID, r.ID, evidenceAt, n.HostID
	st.leftTold = ""
	m.clampNext(st)
	st.want, st.drift = &verdict{status: st.node.Status, ready: st.node.Ready, reportID: r.ID, message: d.Message, parts: d.Parts}, false
	if st.node.Status != cluster.StatusVerified {
		st.node.Tainted = true
	}
	return nil
}

// evict evicts the pods of the configured namespaces and reports whether
// that is done.
func (m *Manager) evict(ctx context.Context, node string, log *slog.Logger) bool {
	count, err := m.nodes.Evict(ctx, node, m.cfg.EvictNamespaces)
	var blocked *cluster.EvictionBlockedError
	switch {
	case errors.As(err, &blocked):
		log.Warn("eviction blocked by disruption budgets", slog.Int(keyEvicted, count), slog.Any("blocked", blocked.Pods))
		return false
	case err != nil:
		log.Error("eviction failed", slog.Int(keyEvicted, count), slog.Any(keyErr, err))
		return false
	}
	log.Info("pods evicted", slog.Int(keyEvicted, count))
	return true
}

// notify queues the verdict for the EIM; it never blocks.
func (m *Manager) notify(hostGUID string, d Decision, log *slog.Logger) {
	if m.sink == nil {
		return
	}
	status := eim.StatusFailed
	if d.Status == StatusVerified {
		status = eim.StatusVerified
	}
	if err := m.sink.Notify(hostGUID, status, d.Detail()); err != nil {
		log.Warn("eim notification not queued", slog.Any(keyErr, err))
	}
}

func clusterStatus(s Status) cluster.Status {
	switch s {
	case StatusVerified:
		return cluster.StatusVerified
	case StatusSecureBootDisabled:
		return cluster.StatusSecureBootDisabled
	default:
		return cluster.StatusAttestationFailed
	}
}

// quoted tells whether r rests on a quote from the agent, so that its reset
// count is the TPM's. A report made while the agent was unreachable carries
// no reset count, and comparing with it would fake a reboot, and with it a
// re-baseline.
func quoted(r *report.Report) bool { return r.HostStatus == report.StatusConnected }

// expired reports whether r is past its expiration (a report without one
// never expires).
func expired(r *report.Report, now time.Time) bool {
	return !r.Expiration.IsZero() && !now.Before(r.Expiration)
}
