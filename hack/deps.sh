#!/usr/bin/env bash
# Installs the Debian packages a profile needs, only when something is missing.
# Usage: hack/deps.sh test|sandbox
set -euo pipefail

profile=${1:-test}
case "$profile" in
  test)    pkgs=(swtpm swtpm-tools libssl-dev postgresql chromium
            qemu-system-x86 ovmf sbsigntool systemd-boot-efi cpio binutils openssl curl) ;;
  sandbox) pkgs=(swtpm swtpm-tools libssl-dev) ;;
  *) echo "deps.sh: unknown profile $profile (want test or sandbox)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "deps.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
