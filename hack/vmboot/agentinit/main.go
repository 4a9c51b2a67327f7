//go:build linux

// Command agentinit is the /init of the trust agent VM (test/e2e/vm): it
// mounts proc, sysfs, devtmpfs, securityfs and efivarfs, writes the firmware
// event log to the serial console as base64 between TC-EVENTLOG-BEGIN and
// TC-EVENTLOG-END lines (the test keeps it as test data), then runs
// /bin/trust-agent run -config /etc/trusted-compute/agent.yaml with its log
// on the console, and powers the VM off when the agent exits. The agent
// carries its bus connection over /dev/ttyS1 (nats.serial_device).
// Build it static: CGO_ENABLED=0 go build ./hack/vmboot/agentinit.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"trustedcompute.io/tc/hack/vmboot/guest"
)

const (
	eventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"
	agentPath    = "/bin/trust-agent"
	configPath   = "/etc/trusted-compute/agent.yaml"
)

func main() {
	out := guest.Console("agentinit")
	if err := dumpEventLog(out); err != nil {
		_, _ = fmt.Fprintf(out, "agentinit: %v\n", err)
	}
	_, _ = fmt.Fprintln(out, "TC-AGENT-START")
	cmd := exec.CommandContext(context.Background(), agentPath, "run", "-config", configPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"PATH=/bin"}
	err := cmd.Run()
	_, _ = fmt.Fprintf(out, "TC-AGENT-EXIT %v\n", err)
	guest.PowerOff()
}

func dumpEventLog(out io.Writer) error {
	log, err := os.ReadFile(eventLogPath)
	if err != nil {
		return fmt.Errorf("read event log: %w", err)
	}
	return guest.WriteBlock(out, "EVENTLOG", log)
}
