package fleet

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Control is something a user does to a sandbox node by hand: a key in the
// live view, a button on the web page or a POST to its control endpoint.
// The attestation manager is not told: it finds out as it would in
// production, from the agent's events, from a report an operator asks for,
// or from an onboard request.
type Control string

// The controls.
const (
	// ControlTamper measures a file that is in no golden flavor: a new IMA
	// log entry and PCR 10 extended. The agent sees the IMA log grow and
	// the verifier attests the node at once.
	ControlTamper Control = "tamper"
	// ControlExtendPCR extends a PCR (7 by default) with a digest no event
	// log explains, then asks the verifier for a report, as an operator
	// would with `tcctl report create`.
	ControlExtendPCR Control = "extend-pcr"
	// ControlReboot resets the node's TPM and boots it again; its agent
	// restarts and reports the boot.
	ControlReboot Control = "reboot"
	// ControlSecureBootOff reboots with the Secure Boot disabled firmware.
	ControlSecureBootOff Control = "secureboot-off"
	// ControlKillAgent kills the node's trust agent (the node runs on),
	// then asks the verifier for a report. A reboot starts the agent again.
	ControlKillAgent Control = "kill-agent"
	// ControlOnboard asks for the node's re-onboarding, as `tcctl node
	// onboard` does: an entry in the onboard requests' ConfigMap.
	ControlOnboard Control = "onboard"
)

// controlKeys are the live view's keys, in the order the help lists them.
var controlKeys = []struct {
	key     byte
	control Control
	help    string
}{
	{'t', ControlTamper, "tamper (IMA)"},
	{'p', ControlExtendPCR, "extend a PCR"},
	{'r', ControlReboot, "reboot"},
	{'s', ControlSecureBootOff, "Secure Boot off"},
	{'k', ControlKillAgent, "kill the agent"},
	{'o', ControlOnboard, "re-onboard"},
}

// Controls lists the controls in the order of their keys.
func Controls() []Control {
	out := make([]Control, 0, len(controlKeys))
	for _, k := range controlKeys {
		out = append(out, k.control)
	}
	return out
}

// DefaultPCR is the PCR ControlExtendPCR extends unless told otherwise: the
// Secure Boot policy PCR.
const DefaultPCR = 7

// tampers numbers the files ControlTamper measures, so that each is new.
var tampers atomic.Uint64

// Do runs control c on node (pcr is the PCR of ControlExtendPCR) and says
// what it did, in a sentence.
func (f *Fleet) Do(ctx context.Context, node string, c Control, pcr int) (string, error) {
	n, err := f.node(node)
	if err != nil {
		return "", err
	}
	switch c {
	case ControlTamper:
		path := fmt.Sprintf("/usr/bin/tampered-%d", tampers.Add(1))
		if err := n.measure(ctx, path, "a file that is in no golden flavor"); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: %s measured (IMA log + PCR 10); its agent reports the change", node, path), nil
	case ControlExtendPCR:
		if pcr < 0 || pcr > 23 {
			return "", fmt.Errorf("pcr %d: want 0 to 23", pcr)
		}
		if err := n.extend(ctx, pcr); err != nil {
			return "", err
		}
		return f.attestNow(ctx, node, fmt.Sprintf("%s: PCR %d extended outside the event log", node, pcr))
	case ControlReboot, ControlSecureBootOff:
		off := c == ControlSecureBootOff
		if err := n.reboot(ctx, off); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: rebooted (TPM reset, measured boot, Secure Boot %s); its agent reports the boot", node, map[bool]string{true: "off", false: "on"}[off]), nil
	case ControlKillAgent:
		if err := n.killAgent(ctx); err != nil {
			return "", err
		}
		return f.attestNow(ctx, node, node+": trust agent killed (a reboot starts it again)")
	case ControlOnboard:
		if err := f.requests.Request(ctx, node, time.Now()); err != nil {
			return "", err
		}
		return node + ": re-onboarding requested (as tcctl node onboard does)", nil
	}
	return "", fmt.Errorf("unknown control %q: want one of %v", c, Controls())
}

// attestNow asks the verifier for a report of node, as an operator does
// with `tcctl report create`; the verifier publishes it and the manager
// acts on it.
func (f *Fleet) attestNow(ctx context.Context, node, done string) (string, error) {
	r, err := f.client.Report(ctx, node)
	if err != nil {
		return "", fmt.Errorf("%s; asking the verifier for a report: %w", done, err)
	}
	trust := "trusted"
	if !r.Trusted() {
		trust = "untrusted"
	}
	return fmt.Sprintf("%s; asked the verifier for a report: %s %s", done, short(r.ID), trust), nil
}
