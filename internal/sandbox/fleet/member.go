package fleet

import (
	"context"
	"errors"
	"strconv"

	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/sandbox"
)

// The simulators a sandbox node can run on.
const (
	// SimulatorProcess runs each node as a process of its own with the
	// in-process reference TPM simulator (one simulator per process).
	SimulatorProcess = "process"
	// SimulatorFleet runs every node in the sandbox's process through the
	// fleet simulator (internal/fleetsim): the real agent code on the real
	// bus, each node with a pure-Go software TPM.
	SimulatorFleet = "fleet"
	// MaxProcessNodes is the largest fleet that runs on node processes
	// when no simulator is chosen; a larger one runs on the fleet
	// simulator.
	MaxProcessNodes = 20
	// MaxNodes is the largest fleet the sandbox starts.
	MaxNodes = 10000
)

// errNotOnFleetSimulator is the refusal of what a simulated-fleet node
// cannot do.
var errNotOnFleetSimulator = errors.New("simulated-fleet nodes boot one firmware image, with Secure Boot on, and keep no files: run the sandbox with --simulator " + SimulatorProcess + " (at most a few dozen nodes) for this")

// member is a sandbox node as the fleet drives it: a node process on the
// reference simulator, or a node of the fleet simulator.
type member interface {
	// id is the node's name (its Node object and host id) and its
	// hardware UUID.
	id() (name, uuid string)
	// measure has the node's kernel measure a file: IMA log and PCR 10.
	measure(ctx context.Context, path, content string) error
	// extend extends pcr with a digest no event log explains.
	extend(ctx context.Context, pcr int) error
	// reboot resets the TPM and boots again; the agent restarts.
	reboot(ctx context.Context, secureBootOff bool) error
	// killAgent stops the node's trust agent; the node runs on.
	killAgent(ctx context.Context) error
	// resetCount is the TPM's reset count after the last boot.
	resetCount() uint32
}

// The node process's side of member: one command line each.

func (n *nodeProc) id() (string, string) { return n.name, n.uuid }

func (n *nodeProc) measure(ctx context.Context, path, content string) error {
	return n.command(ctx, "measure "+path+" "+content)
}

func (n *nodeProc) extend(ctx context.Context, pcr int) error {
	return n.command(ctx, "extend "+strconv.Itoa(pcr))
}

func (n *nodeProc) reboot(ctx context.Context, secureBootOff bool) error {
	if secureBootOff {
		return n.command(ctx, "reboot secureboot-off")
	}
	return n.command(ctx, "reboot")
}

func (n *nodeProc) killAgent(ctx context.Context) error { return n.command(ctx, "kill") }

func (n *nodeProc) resetCount() uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rc
}

// simNode is a node of the fleet simulator.
type simNode struct {
	n     *fleetsim.Node
	banks []string
}

func (s simNode) id() (string, string) { return s.n.HostID, s.n.HardwareUUID }

func (s simNode) measure(_ context.Context, path, content string) error {
	return s.n.Measure(path, content)
}

func (s simNode) extend(_ context.Context, pcr int) error {
	return sandbox.ExtendUnlogged(s.n, s.banks, pcr)
}

func (s simNode) reboot(ctx context.Context, secureBootOff bool) error {
	if secureBootOff {
		return errNotOnFleetSimulator
	}
	return s.n.Reboot(ctx)
}

func (s simNode) killAgent(context.Context) error {
	s.n.StopAgent()
	return nil
}

func (s simNode) resetCount() uint32 {
	rc, _ := s.n.ResetCount()
	return rc
}
