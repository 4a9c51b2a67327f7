//go:build linux

// Command dumpinit is a tiny /init for a throwaway VM: it reads the firmware's
// measured-boot event log and the PCRs of every active bank of the TPM, writes
// them to the serial console as one base64 block between TC-DUMP-BEGIN and
// TC-DUMP-END lines, and powers the VM off. hack/vmboot/capture.sh decodes the
// block. Build it static: CGO_ENABLED=0 go build ./hack/vmboot/dumpinit.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"trustedcompute.io/tc/hack/vmboot/guest"
)

const (
	eventLogPath   = "/sys/kernel/security/tpm0/binary_bios_measurements"
	secureBootPath = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
)

// dump is what the guest reports. Field names are the host contract with capture.sh.
type dump struct {
	EventLog   []byte                       `json:"event_log"` // base64 in JSON
	PCRs       map[string]map[string]string `json:"pcrs"`      // bank -> index -> hex
	Cmdline    string                       `json:"cmdline"`
	SecureBoot *int                         `json:"secureboot,omitempty"` // value byte of the SecureBoot efivar
	TPMDevice  string                       `json:"tpm_device"`
}

var bankNames = map[tpm2.TPMAlgID]string{
	tpm2.TPMAlgSHA1:   "SHA1",
	tpm2.TPMAlgSHA256: "SHA256",
	tpm2.TPMAlgSHA384: "SHA384",
	tpm2.TPMAlgSHA512: "SHA512",
}

func main() {
	out := guest.Console("dumpinit")
	d, err := collect()
	if err != nil {
		_, _ = fmt.Fprintf(out, "\nTC-DUMP-ERROR %v\n", err) // the console is all there is
	} else if err := write(out, d); err != nil {
		_, _ = fmt.Fprintf(out, "\nTC-DUMP-ERROR %v\n", err)
	}
	guest.PowerOff()
}

func collect() (*dump, error) {
	log, err := os.ReadFile(eventLogPath)
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, fmt.Errorf("read cmdline: %w", err)
	}
	d := &dump{EventLog: log, Cmdline: strings.TrimSpace(string(cmdline))}
	if v, err := os.ReadFile(secureBootPath); err == nil && len(v) == 5 {
		sb := int(v[4]) // 4 bytes of attributes, then the value
		d.SecureBoot = &sb
	}

	tpm, path, err := openTPM()
	if err != nil {
		return nil, err
	}
	defer func() { _ = tpm.Close() }()
	d.TPMDevice = path
	if d.PCRs, err = readPCRs(tpm); err != nil {
		return nil, err
	}
	return d, nil
}

func openTPM() (transport.TPMCloser, string, error) {
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, p := range []string{"/dev/tpmrm0", "/dev/tpm0"} {
			tpm, err := linuxtpm.Open(p)
			if err == nil {
				return tpm, p, nil
			}
			lastErr = err
		}
	}
	return nil, "", fmt.Errorf("open tpm: %w", lastErr)
}

// readPCRs reads PCRs 0-23 of every bank the TPM has allocated, one PCR per
// command so that no response is ever truncated.
func readPCRs(tpm transport.TPM) (map[string]map[string]string, error) {
	capRsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("get pcr capability: %w", err)
	}
	assigned, err := capRsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("parse pcr capability: %w", err)
	}
	banks := make(map[string]map[string]string)
	for _, sel := range assigned.PCRSelections {
		name, ok := bankNames[sel.Hash]
		if !ok || bytes.Count(sel.PCRSelect, []byte{0}) == len(sel.PCRSelect) {
			continue // unknown or inactive bank
		}
		values := make(map[string]string)
		for i := uint(0); i < 24; i++ {
			rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
				{Hash: sel.Hash, PCRSelect: tpm2.PCClientCompatible.PCRs(i)},
			}}}.Execute(tpm)
			if err != nil {
				return nil, fmt.Errorf("read %s pcr %d: %w", name, i, err)
			}
			if len(rsp.PCRValues.Digests) != 1 {
				return nil, fmt.Errorf("read %s pcr %d: got %d digests", name, i, len(rsp.PCRValues.Digests))
			}
			values[strconv.Itoa(int(i))] = hex.EncodeToString(rsp.PCRValues.Digests[0].Buffer)
		}
		banks[name] = values
	}
	if len(banks) == 0 {
		return nil, errors.New("no active pcr bank")
	}
	return banks, nil
}

func write(out io.Writer, d *dump) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return guest.WriteBlock(out, "DUMP", b)
}
