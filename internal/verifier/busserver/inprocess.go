package busserver

import (
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus/natsbus"
)

// ConnectInProcess connects to srv without the network; for the verifier's
// own services running in the server's process.
func ConnectInProcess(srv *Server, creds []byte, name string, logger *slog.Logger) (*nats.Conn, error) {
	opts, err := natsbus.ClientOptions(creds, name, logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.InProcessServer(srv))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect in process: %w", err)
	}
	return nc, nil
}
