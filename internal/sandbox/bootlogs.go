package sandbox

import _ "embed"

// Real OVMF firmware event logs (Secure Boot on and off), captured under QEMU
// with hack/vmboot/capture.sh; see internal/appraise/testdata/ovmf/README.md.
var (
	//go:embed bootlogs/sb-on.bin
	BootLogSecureBootOn []byte
	//go:embed bootlogs/sb-off.bin
	BootLogSecureBootOff []byte
)
