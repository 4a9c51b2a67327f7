package measure

import (
	"errors"
	"fmt"
)

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
	r, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }() // read-only root: a close error loses nothing
	data, err := readBounded(r, measureLogPath, c.maxLogSize)
	switch {
	case isNotExist(err):
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoMeasureLog, measureLogPath)
	case err != nil:
		return nil, fmt.Errorf("read measure log: %w", err)
	case len(data) == 0:
		return nil, fmt.Errorf("%w: %s is empty", ErrNoMeasureLog, measureLogPath)
	}
	return data, nil
}
