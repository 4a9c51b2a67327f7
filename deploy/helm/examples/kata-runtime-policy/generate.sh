#!/usr/bin/env bash
# Make the IMA runtime policy (docs/ima-policy.md) of the Kata artifacts the
# trusted-workload chart installs: every file kata-deploy copies to
# /opt/kata on a node, hashed as the chart's kernel IMA policy measures it
# (programs and libraries run or mapped, guest kernel, VM image, initrd,
# firmware and configuration read), so that starting a Kata VM keeps the
# node Verified.
#
#   generate.sh [-o kata.json] [--base node-image.json] (--image REF | --artifacts DIR)
#
#   --image REF      the kata-deploy image of the chart (default: the chart's
#                    kataDeploy.image), exported with docker, podman or crane
#   --artifacts DIR  a directory holding what the image holds under
#                    /opt/kata-artifacts (kata-static.tar.xz extracted: opt/kata/...)
#   --base FILE      a policy of the node image to merge with (tcctl policy
#                    generate --from-dir <node image>), so that one policy
#                    covers the node
#   -o FILE          where to write the policy (default kata-runtime-policy.json)
#
# Then: tcctl policy create kata-nodes -f kata-runtime-policy.json
#       tcctl policy assign kata-nodes --flavorgroup <the Kata nodes' group>
# TCCTL names the tcctl binary (default: tcctl on the PATH).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
values="$here/../../trusted-compute/charts/trusted-workload/values.yaml"
out=kata-runtime-policy.json
base=""
image=""
artifacts=""
tcctl=${TCCTL:-tcctl}

while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --artifacts) artifacts=$2; shift 2 ;;
    *) echo "generate.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# The chart's values name the install directory and the image: value BLOCK
# KEY is the first KEY under the top-level BLOCK of values.yaml.
value() {
  awk -v block="$1" -v key="$2" '
    /^[^ #]/ { inblock = ($1 == block ":") }
    inblock && $1 == key ":" { gsub(/"/, "", $2); print $2; exit }' "$values"
}
kata_dir=$(value imaPolicy kataDir)
if [ -z "$artifacts" ] && [ -z "$image" ]; then
  image="$(value kataDeploy repository):$(value kataDeploy tag)"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$artifacts" ]; then
  mkdir -p "$tmp/image"
  if command -v crane >/dev/null; then
    crane export "$image" - | tar -x -C "$tmp/image" opt/kata-artifacts
  elif command -v docker >/dev/null || command -v podman >/dev/null; then
    engine=$(command -v docker || command -v podman)
    id=$("$engine" create "$image")
    "$engine" export "$id" | tar -x -C "$tmp/image" opt/kata-artifacts
    "$engine" rm "$id" >/dev/null
  else
    echo "generate.sh: crane, docker or podman is needed to read $image (or give --artifacts)" >&2
    exit 1
  fi
  artifacts="$tmp/image/opt/kata-artifacts"
fi
if [ ! -d "$artifacts$kata_dir" ]; then
  echo "generate.sh: $artifacts has no ${kata_dir#/}: not the kata-deploy artifacts" >&2
  exit 1
fi

# --all-files: the guest kernel, image and configuration are read, not run.
"$tcctl" policy generate --from-dir "$artifacts" --dir "$kata_dir" --all-files -o "$tmp/kata.json"
if [ -n "$base" ]; then
  "$tcctl" policy generate --merge "$base" "$tmp/kata.json" -o "$out"
else
  cp "$tmp/kata.json" "$out"
fi
echo "wrote $out"
