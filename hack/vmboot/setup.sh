#!/usr/bin/env bash
# setup.sh installs the Debian packages needed to boot a UEFI VM with a
# software TPM (only the missing ones) and fetches a Debian cloud kernel into
# the cache dir ($VMBOOT_CACHE, default ~/.cache/trusted-compute/vmboot).
#
# Usage: setup.sh [kernel-package]
#   kernel-package  defaults to what linux-image-cloud-amd64 depends on.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

packages=(qemu-system-x86 ovmf swtpm swtpm-tools sbsigntool systemd-boot-efi cpio binutils openssl)
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	[[ $EUID -eq 0 ]] || die "need root to install ${missing[*]} (or install them yourself)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
else
	log "packages already installed"
fi

pkg="${1:-}"
if [[ -z "$pkg" ]]; then
	pkg="$(apt-cache depends linux-image-cloud-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')"
	[[ -n "$pkg" ]] || die "cannot resolve linux-image-cloud-amd64; run apt-get update"
fi
version="$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')"
[[ -n "$version" && "$version" != "(none)" ]] || die "no candidate version for $pkg"

dir="$VMBOOT_CACHE/kernel/${pkg}_${version}"
if [[ ! -d "$dir/root" ]]; then
	log "fetching $pkg $version"
	mkdir -p "$dir"
	(cd "$dir" && apt-get download "$pkg=$version" >&2)
	deb="$(ls "$dir"/*.deb)"
	dpkg-deb -x "$deb" "$dir/root.tmp"
	mv "$dir/root.tmp" "$dir/root"
	rm -f "$deb"
else
	log "kernel $pkg $version already in $dir"
fi
vmlinuzes=("$dir"/root/boot/vmlinuz-*)
configs=("$dir"/root/boot/config-*)
vmlinuz="${vmlinuzes[0]}"
config="${configs[0]}"
[[ -r "$vmlinuz" && -r "$config" ]] || die "no vmlinuz or config in $pkg"
for opt in CONFIG_TCG_TIS=y CONFIG_TCG_TPM=y CONFIG_EFI_STUB=y CONFIG_SECURITYFS=y CONFIG_DEVTMPFS=y; do
	grep -qx "$opt" "$config" || die "$pkg: $opt not set; the TPM/EFI stub must be built in"
done

cat > "$VMBOOT_CACHE/kernel.env" <<ENV
KERNEL_PKG=$pkg
KERNEL_PKG_VERSION=$version
VMLINUZ=$vmlinuz
ENV
log "kernel: $vmlinuz"
echo "$vmlinuz"
