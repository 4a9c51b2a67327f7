//go:build cgo && !tc_nosimulator

package tpm

import (
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/simulator"
)

func openSimulator() (transport.TPMCloser, error) { return simulator.OpenSimulator() }
