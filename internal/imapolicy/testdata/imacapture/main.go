//go:build linux

// Command imacapture is the /init of a throwaway VM that captures a real
// kernel IMA log for the imapolicy tests (see capture.sh): it loads an IMA
// policy that measures what root reads, what runs and kernel modules,
// reads the files capture.sh put under /capture, runs itself once more,
// records one IMA violation, then writes PCRs 0-23 of every active bank and
// the ascii IMA log to the serial console as one base64 JSON block between
// TC-IMA-BEGIN and TC-IMA-END, and powers the VM off.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"trustedcompute.io/tc/hack/vmboot/guest"
)

const (
	policyPath = "/sys/kernel/security/ima/policy"
	logPath    = "/sys/kernel/security/ima/ascii_runtime_measurements"
	// policy measures, with the kernel's default template, every file
	// root reads, every program run and every kernel module; unlike the
	// tcb policy it does not skip ramfs, where the initramfs lives.
	policy = "measure func=BPRM_CHECK\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MODULE_CHECK\n"
)

type capture struct {
	PCRs    map[string]map[string]string `json:"pcrs"`
	IMALog  string                       `json:"ima_log"`
	Cmdline string                       `json:"cmdline"`
	Notes   []string                     `json:"notes"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		return // measured by BPRM_CHECK when it ran
	}
	out := guest.Console("imacapture")
	c, err := run()
	if err == nil {
		var b []byte
		if b, err = json.Marshal(c); err == nil {
			err = guest.WriteBlock(out, "IMA", b)
		}
	}
	if err != nil {
		_, _ = fmt.Fprintf(out, "\nTC-IMA-ERROR %v\n", err)
	}
	guest.PowerOff()
}

func run() (*capture, error) {
	c := &capture{}
	if err := os.WriteFile(policyPath, []byte(policy), 0); err != nil {
		return nil, fmt.Errorf("load ima policy: %w", err)
	}
	// Files to measure: read whole, as root.
	err := filepath.WalkDir("/capture", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		_, err = os.ReadFile(p)
		c.Notes = append(c.Notes, "read "+p)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := exec.Command("/init", "child").Run(); err != nil {
		return nil, fmt.Errorf("run /init child: %w", err)
	}
	c.Notes = append(c.Notes, "ran /init child")
	// A violation: open for reading a file another descriptor has open
	// for writing (IMA's open_writers).
	if err := os.MkdirAll("/var/log", 0o755); err != nil {
		return nil, err
	}
	w, err := os.Create("/var/log/app.log")
	if err != nil {
		return nil, err
	}
	_, _ = w.WriteString("log line\n")
	if _, err := os.ReadFile("/var/log/app.log"); err != nil {
		return nil, err
	}
	_ = w.Close()
	c.Notes = append(c.Notes, "read /var/log/app.log while open for writing")
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	c.Cmdline = string(bytes.TrimSpace(cmdline))
	// PCRs first, then the log: the log holds at least the entries the
	// PCR 10 values cover.
	if c.PCRs, err = readPCRs(); err != nil {
		return nil, err
	}
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	log, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	c.IMALog = string(log)
	return c, nil
}

var bankNames = map[tpm2.TPMAlgID]string{tpm2.TPMAlgSHA1: "SHA1", tpm2.TPMAlgSHA256: "SHA256", tpm2.TPMAlgSHA384: "SHA384", tpm2.TPMAlgSHA512: "SHA512"}

func readPCRs() (map[string]map[string]string, error) {
	var tpm interface {
		Send([]byte) ([]byte, error)
		Close() error
	}
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if tpm, err = linuxtpm.Open("/dev/tpmrm0"); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open tpm: %w", err)
	}
	defer func() { _ = tpm.Close() }()
	capRsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(tpm)
	if err != nil {
		return nil, err
	}
	assigned, err := capRsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, err
	}
	banks := map[string]map[string]string{}
	for _, sel := range assigned.PCRSelections {
		name, ok := bankNames[sel.Hash]
		if !ok || bytes.Count(sel.PCRSelect, []byte{0}) == len(sel.PCRSelect) {
			continue
		}
		values := map[string]string{}
		for i := uint(0); i < 24; i++ {
			rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
				{Hash: sel.Hash, PCRSelect: tpm2.PCClientCompatible.PCRs(i)},
			}}}.Execute(tpm)
			if err != nil || len(rsp.PCRValues.Digests) != 1 {
				return nil, fmt.Errorf("read %s pcr %d: %v", name, i, err)
			}
			values[strconv.Itoa(int(i))] = hex.EncodeToString(rsp.PCRValues.Digests[0].Buffer)
		}
		banks[name] = values
	}
	return banks, nil
}
