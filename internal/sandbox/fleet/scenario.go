package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Scenarios a newcomer (and the tests) can run, in the order "all" runs them.
var Scenarios = []string{"tamper", "reboot", "secureboot-off", "onboard", "secret"}

// processOnly are the scenarios that need node processes: a second
// firmware image, files on the node.
var processOnly = map[string]bool{"secureboot-off": true, "secret": true}

// scenarioTimeout bounds each wait of a scenario.
const scenarioTimeout = 60 * time.Second

// RunScenario runs a scenario ("all" runs every one) on a fleet whose nodes
// are Verified, printing each step with its time to w. It returns an error
// when the fleet did not behave as the scenario says.
func RunScenario(ctx context.Context, f *Fleet, name string, w io.Writer) error {
	names := []string{name}
	if name == "all" {
		names = Scenarios
	} else if !slices.Contains(Scenarios, name) {
		return fmt.Errorf("unknown scenario %q: want one of %s or all", name, strings.Join(Scenarios, ", "))
	}
	s := &scenario{f: f, w: w, nodes: f.NodeNames()}
	for _, n := range names {
		if f.Simulator() == SimulatorFleet && processOnly[n] {
			if name != "all" {
				return fmt.Errorf("scenario %s: %w", n, errNotOnFleetSimulator)
			}
			s.printf("== scenario %s skipped: %v", n, errNotOnFleetSimulator)
			continue
		}
		s.printf("== scenario %s", n)
		start := time.Now()
		var err error
		switch n {
		case "tamper":
			err = s.tamper(ctx)
		case "reboot":
			err = s.reboot(ctx)
		case "secureboot-off":
			err = s.secureBootOff(ctx)
		case "onboard":
			err = s.onboard(ctx)
		case "secret":
			err = s.secret(ctx)
		}
		if err != nil {
			s.printf("FAIL %s after %s: %v", n, since(start), err)
			return fmt.Errorf("scenario %s: %w", n, err)
		}
		s.printf("PASS %s in %s", n, since(start))
	}
	return nil
}

type scenario struct {
	f     *Fleet
	w     io.Writer
	nodes []string
	// tampered is the node the tamper scenario failed, for onboard.
	tampered string
}

func (s *scenario) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(s.w, format+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }

// pick is the i-th node, wrapping around small fleets.
func (s *scenario) pick(i int) string { return s.nodes[i%len(s.nodes)] }

// healthy lists the nodes other than target that are Verified and not
// cordoned (one read of every Node).
func (s *scenario) healthy(ctx context.Context, target string) []string {
	rows, _ := s.f.Rows(ctx)
	var out []string
	for _, r := range rows {
		if r.Node != target && r.Status == statusTitle(cluster.StatusVerified) && !r.Cordoned {
			out = append(out, r.Node)
		}
	}
	return out
}

// stillHealthy checks that the given nodes are still Verified and uncordoned.
func (s *scenario) stillHealthy(ctx context.Context, nodes []string) error {
	rows, err := s.f.Rows(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]NodeRow, len(rows))
	for _, r := range rows {
		byName[r.Node] = r
	}
	for _, n := range nodes {
		if r := byName[n]; r.Status != statusTitle(cluster.StatusVerified) || r.Cordoned {
			return fmt.Errorf("bystander %s is %s (cordoned %v), want verified and schedulable", n, r.Status, r.Cordoned)
		}
	}
	switch {
	case len(nodes) > 4:
		s.printf("   %s and %d other nodes stay verified and schedulable", strings.Join(nodes[:3], ", "), len(nodes)-3)
	case len(nodes) > 0:
		s.printf("   %s stay verified and schedulable", strings.Join(nodes, ", "))
	}
	return nil
}

// checkFailed checks what MarkFailed leaves on a node: cordon by us, taint,
// no ready label, condition False with reason, and a Warning Event. The
// manager writes these in separate requests (the status label and the
// cordon first), so a node just seen cordoned may lack the rest for a
// moment: the check is repeated for a few seconds before it fails.
func (s *scenario) checkFailed(ctx context.Context, node, reason string) error {
	var problems []string
	var c corev1.NodeCondition
	err := poll(ctx, failedSettle, 100*time.Millisecond, func() (bool, error) {
		var err error
		problems, c, err = s.failedProblems(ctx, node, reason)
		return len(problems) == 0, err
	}, func() error { return errors.New(node + ": " + strings.Join(problems, "; ")) })
	if err != nil {
		return err
	}
	s.printf("   %s: cordoned, tainted %s, condition False %s: %s", node, untrustedTaint, c.Reason, c.Message)
	return nil
}

// failedSettle bounds how long checkFailed waits for the manager's writes
// after the node was seen failed and cordoned.
const failedSettle = 10 * time.Second

// failedProblems lists what a failed node lacks of MarkFailed's marks.
func (s *scenario) failedProblems(ctx context.Context, node, reason string) ([]string, corev1.NodeCondition, error) {
	info, err := s.f.adapter.Get(ctx, node)
	if err != nil {
		return nil, corev1.NodeCondition{}, err
	}
	var problems []string
	if !info.Cordoned || !info.CordonedByUs {
		problems = append(problems, "not cordoned by the manager")
	}
	if !info.Tainted {
		problems = append(problems, "no "+untrustedTaint+" taint")
	}
	if info.Ready {
		problems = append(problems, "still labelled ready")
	}
	c, err := s.f.condition(ctx, node)
	if err != nil {
		return nil, corev1.NodeCondition{}, err
	}
	if c.Status != "False" || c.Reason != reason {
		problems = append(problems, fmt.Sprintf("condition %s %s, want False/%s", c.Status, c.Reason, reason))
	}
	events, err := s.f.Events(ctx, node)
	if err != nil {
		return nil, corev1.NodeCondition{}, err
	}
	if !slices.ContainsFunc(events, func(e Event) bool { return e.Type == "Warning" && e.Reason == reason }) {
		problems = append(problems, "no Warning Event "+reason)
	}
	return problems, c, nil
}

func (s *scenario) tamper(ctx context.Context) error {
	target := s.pick(0)
	others := s.healthy(ctx, target)
	start := time.Now()
	if err := s.f.Measure(ctx, target, "/usr/bin/evil", "a file that is in no golden flavor"); err != nil {
		return err
	}
	s.printf("   %s: /usr/bin/evil measured (IMA log + PCR 10)", target)
	cordoned := true
	if _, err := s.f.WaitStatus(ctx, target, cluster.StatusAttestationFailed, &cordoned, scenarioTimeout); err != nil {
		return err
	}
	s.printf("   %s: Attestation Failed and cordoned %s after the tamper", target, since(start))
	if err := s.checkFailed(ctx, target, cluster.ReasonAttestationFailed); err != nil {
		return err
	}
	s.tampered = target
	return s.stillHealthy(ctx, others)
}

// rebootAndWait reboots node and waits for its first verdict of the new
// boot: a report with the new reset count that the manager acted on.
func (s *scenario) rebootAndWait(ctx context.Context, node string, secureBootOff bool, want cluster.Status) (cluster.NodeInfo, error) {
	start := time.Now()
	if err := s.f.Reboot(ctx, node, secureBootOff); err != nil {
		return cluster.NodeInfo{}, err
	}
	rc, err := s.resetCountNow(ctx, node)
	if err != nil {
		return cluster.NodeInfo{}, err
	}
	s.printf("   %s: rebooted (secure boot %v), TPM reset count %d, %s", node, !secureBootOff, rc, since(start))
	var info cluster.NodeInfo
	err = poll(ctx, scenarioTimeout, 200*time.Millisecond, func() (bool, error) {
		var err error
		if info, err = s.f.adapter.Get(ctx, node); err != nil || info.Status != want || info.LastReport == "" {
			return false, err
		}
		var r report.Report
		if err := s.f.client.Do(ctx, http.MethodGet, "/hvs/v2/reports/"+info.LastReport, nil, &r); err != nil || r.ResetCount != rc {
			return false, nil
		}
		s.printf("   %s: %s on report %s of the new boot, %s after the reboot", node, want, short(r.ID), since(start))
		return true, nil
	}, func() error {
		return fmt.Errorf("%s: status %s after the reboot, want %s on a report of reset count %d", node, info.Status, want, rc)
	})
	return info, err
}

// resetCountNow reads the host's reset count as the node reports it.
func (s *scenario) resetCountNow(_ context.Context, node string) (uint32, error) {
	n, err := s.f.node(node)
	if err != nil {
		return 0, err
	}
	return n.resetCount(), nil
}

func (s *scenario) reboot(ctx context.Context) error {
	target := s.pick(1)
	others := s.healthy(ctx, target)
	before, err := s.f.Events(ctx, target)
	if err != nil {
		return err
	}
	info, err := s.rebootAndWait(ctx, target, false, cluster.StatusVerified)
	if err != nil {
		return err
	}
	if info.Cordoned {
		return fmt.Errorf("%s is cordoned after a clean reboot", target)
	}
	after, err := s.f.Events(ctx, target)
	if err != nil {
		return err
	}
	replaced := ""
	for _, e := range after[len(before):] {
		switch {
		case e.Type == "Warning" && e.Reason == cluster.ReasonGoldenFlavorsReplaced && replaced == "":
			replaced = e.Note
		case e.Type == "Warning" && e.Reason != cluster.ReasonVerifierUnreachable:
			return fmt.Errorf("%s: unexpected Warning Event %s: %s", target, e.Reason, e.Note)
		}
	}
	// The update changed what the boot measured: the golden flavors it
	// replaced are on record, as any change of a boot would be.
	if !strings.Contains(replaced, "measured IMA otherwise") {
		return fmt.Errorf("%s: no Warning Event %s naming IMA after a boot with an updated containerd (got %q)",
			target, cluster.ReasonGoldenFlavorsReplaced, replaced)
	}
	s.printf("   %s: re-baselined (new golden IMA: containerd was updated) and Verified, never cordoned", target)
	s.printf("   %s: Warning %s: the boot measured IMA otherwise than the flavors it replaced", target, cluster.ReasonGoldenFlavorsReplaced)
	return s.stillHealthy(ctx, others)
}

func (s *scenario) secureBootOff(ctx context.Context) error {
	target := s.pick(2)
	others := s.healthy(ctx, target)
	if _, err := s.rebootAndWait(ctx, target, true, cluster.StatusSecureBootDisabled); err != nil {
		return err
	}
	if err := s.checkFailed(ctx, target, cluster.ReasonSecureBootDisabled); err != nil {
		return err
	}
	return s.stillHealthy(ctx, others)
}

func (s *scenario) onboard(ctx context.Context) error {
	target := s.tampered
	if target == "" {
		if err := s.tamper(ctx); err != nil {
			return err
		}
		target = s.tampered
	}
	others := s.healthy(ctx, target)
	// The operator fixes the node: a clean boot. The manager re-baselines
	// and finds the new boot trusted, but the node stays failed and
	// cordoned: nothing lifts a failure but a re-onboarding.
	start := time.Now()
	if err := s.f.Reboot(ctx, target, false); err != nil {
		return err
	}
	rc, err := s.resetCountNow(ctx, target)
	if err != nil {
		return err
	}
	s.printf("   %s: fixed by a clean reboot, TPM reset count %d", target, rc)
	err = poll(ctx, scenarioTimeout, 200*time.Millisecond, func() (bool, error) {
		r, err := s.f.latestReport(ctx, target)
		if err != nil || r == nil || !r.Trusted() || r.ResetCount != rc {
			return false, err
		}
		s.printf("   %s: re-baselined, report %s of the new boot trusted, %s after the reboot", target, short(r.ID), since(start))
		return true, nil
	}, func() error {
		return fmt.Errorf("%s: no trusted report of reset count %d after the reboot", target, rc)
	})
	if err != nil {
		return err
	}
	info, err := s.f.adapter.Get(ctx, target)
	if err != nil {
		return err
	}
	if info.Status != cluster.StatusAttestationFailed || !info.Cordoned || !info.Tainted {
		return fmt.Errorf("%s: %s, cordoned %v, tainted %v without an onboard request, want still failed", target, info.Status, info.Cordoned, info.Tainted)
	}
	s.printf("   %s: still Attestation Failed, cordoned and tainted: nothing lifts a failure on its own", target)
	start = time.Now()
	if _, err := s.f.Do(ctx, target, ControlOnboard, 0); err != nil {
		return err
	}
	s.printf("   operator: re-onboarding of %s requested (ConfigMap %s/%s, as tcctl node onboard does)", target, s.f.opts.Namespace, cluster.OnboardConfigMap)
	cordoned := false
	if info, err = s.f.WaitStatus(ctx, target, cluster.StatusVerified, &cordoned, scenarioTimeout); err != nil {
		return err
	}
	var problems []string
	if info.CordonedByUs {
		problems = append(problems, "cordoned-by annotation left")
	}
	if info.Tainted {
		problems = append(problems, "taint left")
	}
	// The manager marks the Node Verified, then removes the request: on a
	// real kube-apiserver the second write may still be on its way.
	if err := s.requestGone(ctx, target, 5*time.Second); err != nil {
		problems = append(problems, err.Error())
	}
	events, err := s.f.Events(ctx, target)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(events, func(e Event) bool { return e.Reason == cluster.ReasonOnboarded }) {
		problems = append(problems, "no Onboarded Event")
	}
	if len(problems) > 0 {
		return errors.New(target + ": " + strings.Join(problems, "; "))
	}
	s.printf("   %s: Onboarded, uncordoned, taint removed, %s after the request (ready %v)", target, since(start), info.Ready)
	return s.stillHealthy(ctx, others)
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// latestReport is the verifier's latest report of host, nil when it has
// none.
func (f *Fleet) latestReport(ctx context.Context, host string) (*report.Report, error) {
	var out struct {
		Reports []report.Report `json:"reports"`
	}
	q := url.Values{"hostId": {host}, "latestPerHost": {"true"}}
	if err := f.client.Do(ctx, http.MethodGet, "/hvs/v2/reports?"+q.Encode(), nil, &out); err != nil {
		return nil, fmt.Errorf("latest report of %s: %w", host, err)
	}
	if len(out.Reports) == 0 {
		return nil, nil
	}
	return &out.Reports[0], nil
}

// requestGone waits up to timeout for the onboard request of node to be
// removed.
func (s *scenario) requestGone(ctx context.Context, node string, timeout time.Duration) error {
	var err error
	return poll(ctx, timeout, 100*time.Millisecond, func() (bool, error) {
		var left map[string]string
		left, err = s.f.requests.List(ctx)
		return err == nil && left[node] == "", nil
	}, func() error {
		return fmt.Errorf("onboard request left after %s (%w)", timeout, err)
	})
}
