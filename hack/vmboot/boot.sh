#!/usr/bin/env bash
# boot.sh boots a unified kernel image under QEMU (TCG, q35, SMM) with OVMF
# and a software TPM (swtpm), writing the serial console to a log file. It
# returns when the guest powers off (exit 0) or the timeout hits (exit 124),
# and always stops the QEMU and swtpm it started.
#
# Usage: boot.sh --uki <image.efi> --tpm-state <dir> --serial <log>
#                [--secureboot on|off] [--vars <file>] [--pcr-banks <list>] [--ek-cert]
#                [--timeout <seconds>] [-- <extra qemu args>]
#   --secureboot  on (default): OVMF_VARS_4M.snakeoil.fd (Secure Boot enabled,
#                 PK/KEK/db = the snakeoil certificate); off: OVMF_VARS_4M.fd.
#   --vars        UEFI variable store to use and keep; created from the
#                 --secureboot template if missing. Default: a fresh copy.
#   --tpm-state   swtpm state dir; created if missing. Reuse it to reboot the
#                 same TPM.
#   --pcr-banks   for a new TPM state only: run swtpm_setup with these banks
#                 (e.g. sha256,sha384). Default: swtpm's own default.
#   --ek-cert     for a new TPM state only: swtpm_setup also creates EK and
#                 platform certificates from the local CA (/etc/swtpm-localca.conf,
#                 issuer /var/lib/swtpm-localca/issuercert.pem) and locks NVRAM.
#   --timeout     default 180.
# Extra QEMU args, e.g. a host<->guest channel on /dev/ttyS1:
#   -- -serial unix:/tmp/chan.sock,server,nowait
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

uki="" state="" serial="" secureboot=on vars="" banks="" ekcert=0 timeout=180
while [[ $# -gt 0 ]]; do
	case "$1" in
	--uki) uki="$2"; shift 2 ;;
	--tpm-state) state="$2"; shift 2 ;;
	--serial) serial="$2"; shift 2 ;;
	--secureboot) secureboot="$2"; shift 2 ;;
	--vars) vars="$2"; shift 2 ;;
	--pcr-banks) banks="$2"; shift 2 ;;
	--ek-cert) ekcert=1; shift ;;
	--timeout) timeout="$2"; shift 2 ;;
	--) shift; break ;;
	*) die "unknown argument $1 (see the header of $0)" ;;
	esac
done
[[ -n "$uki" && -n "$state" && -n "$serial" ]] || die "--uki, --tpm-state and --serial are required"
[[ -r "$uki" ]] || die "image $uki not readable"
case "$secureboot" in
on) template="$OVMF_VARS_SB_ON" ;;
off) template="$OVMF_VARS_SB_OFF" ;;
*) die "--secureboot must be on or off, not $secureboot" ;;
esac
for f in "$OVMF_CODE" "$template"; do
	[[ -r "$f" ]] || die "firmware $f not found; run hack/vmboot/setup.sh"
done
for tool in qemu-system-x86_64 swtpm timeout; do
	command -v "$tool" >/dev/null || die "$tool not found; run hack/vmboot/setup.sh"
done

tmp="$(mktemp -d)"
qemu_pid="" swtpm_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	# Stop only what this script started, by PID.
	local pid
	for pid in $qemu_pid $swtpm_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$state"
state="$(cd "$state" && pwd)"
if [[ (-n "$banks" || $ekcert -eq 1) && ! -e "$state/tpm2-00.permall" ]]; then
	command -v swtpm_setup >/dev/null || die "swtpm_setup not found (apt-get install swtpm-tools)"
	setup_args=(--tpm2 --tpm-state "$state")
	[[ -n "$banks" ]] && setup_args+=(--pcr-banks "$banks")
	((ekcert)) && setup_args+=(--create-ek-cert --create-platform-cert --lock-nvram)
	log "manufacturing a TPM in $state (${setup_args[*]:3})"
	swtpm_setup "${setup_args[@]}" >"$tmp/swtpm_setup.log" 2>&1 ||
		{ cat "$tmp/swtpm_setup.log" >&2; die "swtpm_setup failed"; }
fi
if [[ -z "$vars" ]]; then
	vars="$tmp/vars.fd"
fi
if [[ ! -e "$vars" ]]; then
	cp "$template" "$vars"
fi

# The FAT directory QEMU serves as the boot disk: removable-media default path.
mkdir -p "$tmp/esp/EFI/BOOT"
cp "$uki" "$tmp/esp/EFI/BOOT/BOOTX64.EFI"

# The control socket path must stay short (sun_path is 108 bytes).
sock="$tmp/swtpm.sock"
swtpm socket --tpm2 --tpmstate dir="$state" --ctrl type=unixio,path="$sock" \
	--log file="$tmp/swtpm.log" &
swtpm_pid=$!
for _ in $(seq 100); do
	[[ -S "$sock" ]] && break
	kill -0 "$swtpm_pid" 2>/dev/null || { cat "$tmp/swtpm.log" >&2; die "swtpm exited"; }
	sleep 0.05
done
[[ -S "$sock" ]] || die "swtpm did not create $sock"

mkdir -p "$(dirname "$serial")"
log "booting $(basename "$uki") (Secure Boot $secureboot, timeout ${timeout}s, serial $serial)"
start=$(date +%s%N)
timeout --foreground "$timeout" qemu-system-x86_64 \
	-machine q35,smm=on,accel=tcg -m 512 \
	-global driver=cfi.pflash01,property=secure,value=on \
	-drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE" \
	-drive if=pflash,format=raw,unit=1,file="$vars" \
	-chardev socket,id=chrtpm,path="$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
	-device tpm-tis,tpmdev=tpm0 \
	-drive if=virtio,format=raw,readonly=on,file=fat:"$tmp/esp" \
	-display none -net none -no-reboot -monitor none \
	-serial file:"$serial" \
	"$@" &
qemu_pid=$!
rc=0
wait "$qemu_pid" || rc=$?
qemu_pid=""
ms=$((($(date +%s%N) - start) / 1000000))
elapsed="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
if [[ $rc -eq 124 ]]; then
	log "timed out after ${timeout}s; see $serial"
else
	log "QEMU exited with status $rc after ${elapsed}s"
fi
exit "$rc"
