package measure

import (
	"fmt"
)

// EventLog returns the raw TCG PC Client binary event log. It returns an
// error wrapping ErrNoEventLog when the node has none, and one wrapping
// ErrTooLarge when the log exceeds the collector's size limit.
func (c *Collector) EventLog() ([]byte, error) {
	r, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }() // read-only root: a close error loses nothing
	data, err := readBounded(r, eventLogPath, c.maxLogSize)
	switch {
	case isNotExist(err):
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoEventLog, eventLogPath)
	case err != nil:
		return nil, fmt.Errorf("read event log: %w", err)
	case len(data) == 0:
		return nil, fmt.Errorf("%w: %s is empty", ErrNoEventLog, eventLogPath)
	}
	return data, nil
}
