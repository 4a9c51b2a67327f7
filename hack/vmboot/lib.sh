# shellcheck shell=bash
# Shared settings for the hack/vmboot scripts. Source it; do not run it.

VMBOOT_CACHE="${VMBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trusted-compute/vmboot}"
OVMF_CODE="${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.secboot.fd}"
OVMF_VARS_SB_ON="${OVMF_VARS_SB_ON:-/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd}"
OVMF_VARS_SB_OFF="${OVMF_VARS_SB_OFF:-/usr/share/OVMF/OVMF_VARS_4M.fd}"
SB_KEY="${SB_KEY:-/usr/share/ovmf/PkKek-1-snakeoil.key}"
SB_CERT="${SB_CERT:-/usr/share/ovmf/PkKek-1-snakeoil.pem}"
SB_KEY_PASS="${SB_KEY_PASS:-snakeoil}"
EFI_STUB="${EFI_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}"

die() { echo "error: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

# kernel_env loads the kernel chosen by setup.sh (VMLINUZ, KERNEL_PKG, KERNEL_PKG_VERSION).
kernel_env() {
	local env="$VMBOOT_CACHE/kernel.env"
	[[ -r "$env" ]] || die "no kernel in $VMBOOT_CACHE; run hack/vmboot/setup.sh first"
	# shellcheck source=/dev/null
	source "$env"
	[[ -r "$VMLINUZ" ]] || die "kernel $VMLINUZ is missing; run hack/vmboot/setup.sh again"
}
