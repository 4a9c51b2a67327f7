package fleetsim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
)

// WatchReports subscribes nc (an attestation manager's bus connection) to
// every trust report the verifier publishes and calls fn with each one and
// the time it arrived. It reads the JWS payload without checking the
// signature: a load test counts and times reports, it decides nothing.
func WatchReports(nc *nats.Conn, fn func(r *Report, at time.Time)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(bus.AllReports, func(m *nats.Msg) {
		at := time.Now()
		r, err := reportPayload(m.Data)
		if err != nil {
			return
		}
		fn(r, at)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", bus.AllReports, err)
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", bus.AllReports, err)
	}
	return sub, nil
}

// reportPayload decodes the report in a compact JWS.
func reportPayload(jws []byte) (*Report, error) {
	parts := strings.Split(string(jws), ".")
	if len(parts) != 3 {
		return nil, errors.New("report: not a compact jws")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("report payload: %w", err)
	}
	var r Report
	if err := json.Unmarshal(payload, &r); err != nil {
		return nil, fmt.Errorf("report payload: %w", err)
	}
	return &r, nil
}
