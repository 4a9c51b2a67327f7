#!/usr/bin/env bash
# mkuki.sh builds a unified kernel image (systemd EFI stub + kernel + initramfs
# whose /init is the given static binary + kernel command line) and signs it
# with the OVMF snakeoil Secure Boot key, so the Secure Boot firmware boots it.
# The image is reproducible: same inputs, same bytes (before signing), so the
# same PCR 4 digest.
#
# Usage: mkuki.sh [--unsigned] [--add <file>=<path>]... <init-binary> <out.efi> [cmdline]
#   cmdline defaults to "console=ttyS0 quiet".
#   --add puts <file> into the initramfs at <path> (absolute), keeping its
#   mode bits; repeatable (e.g. the trust agent, its config and credentials).
# Env: VMLINUZ (default: the kernel fetched by setup.sh), SB_KEY, SB_CERT,
#      SB_KEY_PASS, EFI_STUB (see lib.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

sign=1
adds=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--unsigned) sign=0; shift ;;
	--add) adds+=("$2"); shift 2 ;;
	*) break ;;
	esac
done
[[ $# -ge 2 && $# -le 3 ]] || die "usage: mkuki.sh [--unsigned] [--add <file>=<path>]... <init-binary> <out.efi> [cmdline]"
init="$1"
out="$2"
cmdline="${3:-console=ttyS0 quiet}"
[[ -x "$init" ]] || die "init binary $init is not an executable file"
if [[ -z "${VMLINUZ:-}" ]]; then
	kernel_env
fi
[[ -r "$VMLINUZ" ]] || die "kernel $VMLINUZ not readable"
[[ -r "$EFI_STUB" ]] || die "EFI stub $EFI_STUB not found (apt-get install systemd-boot-efi)"
for tool in objcopy objdump cpio gzip; do
	command -v "$tool" >/dev/null || die "$tool not found; run hack/vmboot/setup.sh"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# initramfs: newc cpio holding only /init, fixed owners and times.
mkdir -p "$tmp/root/dev" "$tmp/root/proc" "$tmp/root/sys"
install -m 0755 "$init" "$tmp/root/init"
# Debian builds efivarfs as a module; ship it so /init can read the SecureBoot
# variable. Optional: skipped when the kernel tree has no such module.
efivarfs_ko="$(find "$(dirname "$VMLINUZ")/../lib/modules" -name efivarfs.ko 2>/dev/null | head -n1 || true)"
if [[ -n "$efivarfs_ko" ]]; then
	install -D -m 0644 "$efivarfs_ko" "$tmp/root/lib/modules/efivarfs.ko"
fi
for a in "${adds[@]}"; do
	src="${a%%=*}" dst="${a#*=}"
	[[ -r "$src" && "$dst" == /* && "$a" == *=* ]] || die "--add $a: want <readable file>=<absolute path>"
	install -D -m "$(stat -Lc %a "$src")" "$src" "$tmp/root$dst"
done
find "$tmp/root" -exec touch -h -d @0 {} +
(cd "$tmp/root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 > "$tmp/initrd"

printf 'ID=trusted-compute-vmboot\nNAME="Trusted Compute vmboot"\n' > "$tmp/osrel"
printf '%s' "$cmdline" > "$tmp/cmdline"

# Place the new sections after the stub's last section, each aligned, as in
# the systemd-stub(7) UKI recipe. Alignment: 4 KiB (a multiple of the stub's
# SectionAlignment).
align=4096
align_up() { echo $(( ($1 + align - 1) / align * align )); }
stub_end=0
while read -r _ _ size vma _; do
	end=$((16#$vma + 16#$size))
	((end > stub_end)) && stub_end=$end
done < <(objdump -h "$EFI_STUB" | awk 'NF == 7 && $1 ~ /^[0-9]+$/')
[[ "$stub_end" -gt 0 ]] || die "cannot read the section table of $EFI_STUB"
osrel_vma=$(align_up "$stub_end")
cmdline_vma=$(align_up $((osrel_vma + $(stat -Lc%s "$tmp/osrel"))))
linux_vma=$(align_up $((cmdline_vma + $(stat -Lc%s "$tmp/cmdline"))))
initrd_vma=$(align_up $((linux_vma + $(stat -Lc%s "$VMLINUZ"))))

objcopy \
	--add-section .osrel="$tmp/osrel" --change-section-vma .osrel="$(printf 0x%x "$osrel_vma")" \
	--add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline="$(printf 0x%x "$cmdline_vma")" \
	--add-section .linux="$VMLINUZ" --change-section-vma .linux="$(printf 0x%x "$linux_vma")" \
	--add-section .initrd="$tmp/initrd" --change-section-vma .initrd="$(printf 0x%x "$initrd_vma")" \
	"$EFI_STUB" "$tmp/uki.efi"
# objcopy stamps the PE header with the current time; zero it (and the PE
# checksum, which covers it; UEFI does not check it, sbsign recomputes it) so
# the image, and the Authenticode hash measured into PCR 4, depend on the
# inputs only.
pe_offset="$(od -An -tu4 -j60 -N4 "$tmp/uki.efi" | tr -d ' ')"
for field in 8 88; do # COFF TimeDateStamp, optional header CheckSum
	printf '\0\0\0\0' | dd of="$tmp/uki.efi" bs=1 seek=$((pe_offset + field)) conv=notrunc status=none
done

if ((sign)); then
	command -v sbsign >/dev/null || die "sbsign not found; run hack/vmboot/setup.sh"
	command -v openssl >/dev/null || die "openssl not found"
	# sbsign cannot read an encrypted key; decrypt it into the private temp dir.
	openssl pkey -in "$SB_KEY" -passin "pass:$SB_KEY_PASS" -out "$tmp/key.pem"
	sbsign --key "$tmp/key.pem" --cert "$SB_CERT" --output "$tmp/uki.signed.efi" "$tmp/uki.efi" 2>&1 |
		grep -v '^Signing ' >&2 || true
	[[ -s "$tmp/uki.signed.efi" ]] || die "sbsign failed"
	mv "$tmp/uki.signed.efi" "$tmp/uki.efi"
fi
mkdir -p "$(dirname "$out")"
mv "$tmp/uki.efi" "$out"
log "wrote $out ($( ((sign)) && echo signed || echo unsigned ), cmdline \"$cmdline\")"
