// Package tpm gives the trust agent its TPM 2.0: it opens a device, a swtpm
// socket or the in-process reference simulator, and provides the endorsement
// key (EK) with its certificate, a persistent attestation key (AK),
// credential activation, PCR reads and extends, and quotes in the wire form
// of package evidence.
//
// A *TPM is safe for use by one goroutine at a time; the agent serialises
// its TPM work.
//
// The in-process simulator ("simulator") needs cgo; build with the tag
// tc_nosimulator (or CGO_ENABLED=0) to leave it out of a production
// binary. It is one global instance per process: a second Open("simulator") while the first is open fails with
// ErrSimulatorInUse, every Open starts from a freshly manufactured TPM, and
// tests that use it cannot run in parallel within one package. A sandbox
// with several simulated nodes needs one process per node, or swtpm.
package tpm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultDevice is the kernel's resource-managed TPM device.
const DefaultDevice = "/dev/tpmrm0"

// Errors callers may need to tell apart.
var (
	// ErrBadSpec reports a TPM spec string Open does not understand.
	ErrBadSpec = errors.New("unsupported tpm spec")
	// ErrSimulatorInUse reports a second open of the process-wide simulator.
	ErrSimulatorInUse = errors.New("the in-process tpm simulator is already open in this process")
	// ErrSimulatorUnavailable reports a binary built without the simulator
	// (CGO_ENABLED=0 or the build tag tc_nosimulator).
	ErrSimulatorUnavailable = errors.New("this binary is built without the in-process tpm simulator")
	// ErrNoEK reports an operation that needs the EK before EK was called.
	ErrNoEK = errors.New("no endorsement key loaded")
	// ErrNoAK reports an operation that needs the AK before LoadOrCreateAK was called.
	ErrNoAK = errors.New("no attestation key loaded")
	// ErrNoActiveBank reports a quote where none of the requested banks is active.
	ErrNoActiveBank = errors.New("none of the requested pcr banks is active on the tpm")
)

// simulatorOpen guards the process-wide simulator.
var simulatorOpen atomic.Bool

// TPM is an open TPM with the keys this package loaded into it.
type TPM struct {
	t       transport.TPMCloser
	release func()
	ek      *EK
	ak      *AK
	closed  bool
}

// Open opens the TPM a spec names:
//
//	device               /dev/tpmrm0
//	device:/path         a TPM character device
//	swtpm:unix:/path     swtpm's server socket (unix)
//	swtpm:host:port      swtpm's server socket (TCP), e.g. swtpm:127.0.0.1:2321
//	simulator            the in-process reference simulator (one per process)
func Open(spec string) (*TPM, error) {
	return OpenContext(context.Background(), spec)
}

// OpenContext is Open with a context that bounds the dial of a swtpm socket.
func OpenContext(ctx context.Context, spec string) (*TPM, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "device":
		path := cmp.Or(arg, DefaultDevice)
		t, err := linuxtpm.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open tpm device %s: %w", path, err)
		}
		return New(t), nil
	case "swtpm":
		network, address := "tcp", arg
		if rest, ok := strings.CutPrefix(arg, "unix:"); ok {
			network, address = "unix", rest
		}
		if address == "" {
			return nil, fmt.Errorf("%w %q: swtpm needs unix:/path or host:port", ErrBadSpec, spec)
		}
		s, err := dialSocket(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return New(s), nil
	case "simulator":
		if arg != "" {
			return nil, fmt.Errorf("%w %q: simulator takes no argument", ErrBadSpec, spec)
		}
		if !simulatorOpen.CompareAndSwap(false, true) {
			return nil, ErrSimulatorInUse
		}
		t, err := openSimulator()
		if err != nil {
			simulatorOpen.Store(false)
			return nil, fmt.Errorf("open tpm simulator: %w", err)
		}
		tpm := New(t)
		tpm.release = func() { simulatorOpen.Store(false) }
		return tpm, nil
	default:
		return nil, fmt.Errorf("%w %q: want device[:/path], swtpm:unix:/path, swtpm:host:port or simulator", ErrBadSpec, spec)
	}
}

// New wraps an open transport, for tests and callers that open the TPM
// themselves. Close closes t.
// Commands the TPM asks to retry are resent.
func New(t transport.TPMCloser) *TPM {
	return &TPM{t: retryTPM{TPMCloser: t, sleep: time.Sleep, mu: new(sync.Mutex)}}
}

// Close flushes the transient EK and closes the transport. The persistent
// AK stays in the TPM. Closing twice is harmless.
func (t *TPM) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.ek != nil {
		if err := t.flush(tpm2.TPMHandle(t.ek.Handle)); err != nil {
			errs = append(errs, fmt.Errorf("flush ek: %w", err))
		}
		t.ek = nil
	}
	if err := t.t.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close tpm: %w", err))
	}
	if t.release != nil {
		t.release()
		t.release = nil
	}
	return errors.Join(errs...)
}

func (t *TPM) flush(h tpm2.TPMHandle) error {
	_, err := tpm2.FlushContext{FlushHandle: h}.Execute(t.t)
	return err
}
