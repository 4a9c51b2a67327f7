#!/usr/bin/env bash
# Captures a real kernel IMA log for internal/imapolicy/testdata: boots the
# hack/vmboot Debian cloud kernel (hack/vmboot/setup.sh, once) in QEMU with
# OVMF and swtpm, with imacapture as /init, and writes
#   <out>/vm-ima.log        the ascii_runtime_measurements
#   <out>/vm-ima.pcrs.json  PCRs 0-23 of the SHA256 and SHA384 banks, read
#                           just before the log
#   <out>/vm-ima.cmdline    the kernel command line
# Usage (from the repository root): capture.sh [out-dir]
set -euo pipefail
repo="$(git rev-parse --show-toplevel)"
here="$repo/internal/imapolicy/testdata/imacapture"
vmboot="$repo/hack/vmboot"
out="${1:-$repo/internal/imapolicy/testdata}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/init" ./internal/imapolicy/testdata/imacapture)
# Files the VM reads as root, so that IMA measures them: a few of the host's
# programs and libraries, and a path with a space.
printf 'echo hello\n' > "$work/run me"
adds=(
	--add "/usr/bin/bash=/capture/usr/bin/bash"
	--add "/usr/bin/ls=/capture/usr/bin/ls"
	--add "/usr/lib/x86_64-linux-gnu/libc.so.6=/capture/usr/lib/x86_64-linux-gnu/libc.so.6"
	--add "$work/run me=/capture/opt/my app/run me"
)
"$vmboot/mkuki.sh" "${adds[@]}" "$work/init" "$work/uki.efi" "console=ttyS0 quiet" 2> >(grep -v 'data remaining' >&2)
"$vmboot/boot.sh" --uki "$work/uki.efi" --secureboot off --tpm-state "$work/tpm" \
	--pcr-banks sha256,sha384 --serial "$work/serial.log" --timeout 400
sed -n '/^TC-IMA-BEGIN/,/^TC-IMA-END/p' "$work/serial.log" | tr -d '\r' | sed '1d;$d' | base64 -d > "$work/capture.json"
python3 - "$work/capture.json" "$out" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
out = sys.argv[2]
open(out + "/vm-ima.log", "w").write(c["ima_log"])
pcrs = {b: c["pcrs"][b] for b in ("SHA256", "SHA384") if b in c["pcrs"]}
json.dump(pcrs, open(out + "/vm-ima.pcrs.json", "w"), indent=2, sort_keys=True)
open(out + "/vm-ima.cmdline", "w").write(c["cmdline"] + "\n")
print("captured", len(c["ima_log"].splitlines()), "IMA lines;", "; ".join(c["notes"]))
PY
