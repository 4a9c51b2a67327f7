//go:build !cgo || tc_nosimulator

package fleet

import "trustedcompute.io/tc/internal/tpm"

func openResettable() (resettableTPM, error) { return nil, tpm.ErrSimulatorUnavailable }
