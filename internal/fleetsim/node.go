package fleetsim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/measure"
)

// Node is one simulated edge node: a soft TPM, the node's logs and facts
// in memory, and the real trust agent serving the verifier over its own
// bus connection.
type Node struct {
	// HostID is the host's id on the bus and in HVS.
	HostID string
	// HardwareUUID is its SMBIOS system UUID.
	HardwareUUID string

	tpm   *softtpm.TPM
	image *bootImage
	banks []string

	mu    sync.Mutex // guards ima and facts
	ima   []string   // the IMA log's lines, this boot
	facts evidence.HostInfo

	// dial connects the agent to the bus; agentCfg and logger configure it.
	dial      func(ctx context.Context) (*nats.Conn, error)
	agentCfg  agent.Config
	nodeNames bool
	logger    *slog.Logger

	runMu sync.Mutex // guards halt
	halt  func()     // stops the running agent
}

func newNode(i int, prefix string, ca *softtpm.EKCA, img *bootImage, banks []string) (*Node, error) {
	t, err := softtpm.New(ca, softtpm.Options{Banks: banks})
	if err != nil {
		return nil, err
	}
	n := &Node{
		HostID:       fmt.Sprintf("%s-%05d", prefix, i),
		HardwareUUID: fmt.Sprintf("5f1e0000-0000-4000-8000-%012x", i),
		tpm:          t,
		image:        img,
		banks:        banks,
	}
	if err := n.boot(); err != nil {
		return nil, err
	}
	return n, nil
}

// boot is what firmware and the kernel do at power-on, after the TPM's
// reset: the firmware's measurements, the root volume's key, and the boot's
// IMA measurements, each line logged before its extend as the kernel does.
func (n *Node) boot() error {
	for _, e := range n.image.extends {
		if err := n.tpm.Extend(e.pcr, e.bank, e.digest); err != nil {
			return fmt.Errorf("measured boot: %w", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.facts = n.image.facts
	n.facts.HardwareUUID = n.HardwareUUID
	n.facts.HostName = n.HostID
	n.facts.BootID = newBootID(n.HardwareUUID, n.tpm)
	n.ima = make([]string, 0, len(n.image.imaBoot)+16)
	for _, e := range n.image.imaBoot {
		if err := n.measureLocked(e); err != nil {
			return err
		}
	}
	return nil
}

func newBootID(uuid string, t *softtpm.TPM) string {
	rc, _ := t.ResetCount()
	return fmt.Sprintf("%s%04x", uuid[:len(uuid)-4], rc&0xffff)
}

func (n *Node) measureLocked(e imaEntry) error {
	n.ima = append(n.ima, e.line)
	for _, x := range e.extends {
		if err := n.tpm.Extend(x.pcr, x.bank, x.digest); err != nil {
			return fmt.Errorf("ima: %w", err)
		}
	}
	return nil
}

// Measure has the node's kernel measure a file: an IMA log line and a PCR
// 10 extend. A file outside the golden flavors makes the node untrusted.
func (n *Node) Measure(path, content string) error {
	e, err := newIMAEntry(path, content, n.banks)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.measureLocked(e)
}

// Remeasure has the kernel measure again the k-th file of the boot image
// (a file replaced by the same content, a new mount of it): the IMA log
// grows, the node stays trusted.
func (n *Node) Remeasure(k int) error {
	e := n.image.imaBoot[k%len(n.image.imaBoot)]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.measureLocked(e)
}

// The agent.Measurer of the node.

// EventLog is the firmware's TCG event log.
func (n *Node) EventLog() ([]byte, error) { return n.image.eventLog, nil }

// IMALog returns the IMA lines from entry offset on.
func (n *Node) IMALog(offset int) (string, int, int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if offset > len(n.ima) {
		return "", 0, len(n.ima), fmt.Errorf("%w: offset %d, log has %d entries", measure.ErrIMAOffset, offset, len(n.ima))
	}
	return strings.Join(n.ima[offset:], ""), offset, len(n.ima), nil
}

// IMAEntryCount is the number of entries in the node's IMA log.
func (n *Node) IMAEntryCount() (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.ima), nil
}

// HostInfo returns the node's facts.
func (n *Node) HostInfo(context.Context) (evidence.HostInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.facts
	f.DiskEncryption.Volumes = slices.Clone(f.DiskEncryption.Volumes)
	return f, nil
}

// MeasureLog is systemd's measurement log of this boot.
func (n *Node) MeasureLog() ([]byte, error) { return n.image.measureLog, nil }

// start connects the agent to the bus and runs it until halted. ctx
// bounds the connection; the agent serves until stop or Reboot.
func (n *Node) start(ctx context.Context) error {
	nc, err := n.dial(ctx)
	if err != nil {
		return fmt.Errorf("connect %s to the bus: %w", n.HostID, err)
	}
	cfg := n.agentCfg
	cfg.HostID = n.HostID
	if n.nodeNames {
		cfg.NodeName = n.HostID
	}
	a, err := agent.New(cfg, n.tpm, n, n.logger)
	if err != nil {
		nc.Close()
		return err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(actx, natsbus.Adapt(nc)); err != nil && actx.Err() == nil {
			n.logger.Error("agent stopped", keyHost, n.HostID, keyError, err.Error())
		}
	}()
	n.runMu.Lock()
	n.halt = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
		nc.Close()
	}
	n.runMu.Unlock()
	return nil
}

// StopAgent stops the node's trust agent, if it runs; the node runs on.
// Reboot starts it again.
func (n *Node) StopAgent() {
	n.runMu.Lock()
	halt := n.halt
	n.halt = nil
	n.runMu.Unlock()
	if halt != nil {
		halt()
	}
}

// Reboot is a platform reset: the agent stops, the TPM resets (resetCount
// up by one, PCRs cleared), firmware and kernel measure the boot again (a
// new IMA log), and the agent starts again on a new bus connection and
// publishes its boot event.
func (n *Node) Reboot(ctx context.Context) error {
	n.StopAgent()
	n.tpm.Reset()
	if err := n.boot(); err != nil {
		return err
	}
	return n.start(ctx)
}

// Extend extends pcr in bank with digest, as an unlogged change to the
// platform would (the sandbox's "extend a PCR" control).
func (n *Node) Extend(pcr int, bank string, digest []byte) error {
	return n.tpm.Extend(pcr, bank, digest)
}

// ResetCount is the TPM's reset count: one more after every Reboot.
func (n *Node) ResetCount() (uint32, error) { return n.tpm.ResetCount() }
