package measure

import "errors"

// measureLogPath is systemd's userspace TPM measurement log: every PCR
// extend made by systemd-pcrextend, systemd-pcrfs, systemd-pcrmachine and
// systemd-cryptsetup (tpm2-measure-pcr=yes) after the firmware's log ends.
const measureLogPath = "run/log/systemd/tpm2-measure.log"

// ErrNoMeasureLog means the node has no systemd userspace measurement log
// (no systemd measurement was made this boot, or /run is not visible).
var ErrNoMeasureLog = errors.New("no systemd tpm2 measure log")

// MeasureLog returns systemd's userspace TPM measurement log as it is on
// disk. It does not parse it: the verifier replays it against the quoted
// PCR 15. It returns an error wrapping ErrNoMeasureLog when there is none
// (absent or empty), and one wrapping ErrTooLarge past the size limit.
func (c *Collector) MeasureLog() ([]byte, error) {
	return c.readLog(measureLogPath, "measure log", ErrNoMeasureLog)
}
