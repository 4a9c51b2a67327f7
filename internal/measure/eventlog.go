package measure

import (
	"fmt"
)

// EventLog returns the raw TCG PC Client binary event log. It returns an
// error wrapping ErrNoEventLog when the node has none, and one wrapping
// ErrTooLarge when the log exceeds the collector's size limit.
func (c *Collector) EventLog() ([]byte, error) {
	return c.readLog(eventLogPath, "event log", ErrNoEventLog)
}

// readLog reads the log at path below the root. A missing or empty log is
// an error wrapping none; one past the size limit wraps ErrTooLarge.
func (c *Collector) readLog(path, what string, none error) ([]byte, error) {
	r, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }() // read-only root: a close error loses nothing
	data, err := readBounded(r, path, c.maxLogSize)
	switch {
	case isNotExist(err):
		return nil, fmt.Errorf("%w: %s does not exist", none, path)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", what, err)
	case len(data) == 0:
		return nil, fmt.Errorf("%w: %s is empty", none, path)
	}
	return data, nil
}
