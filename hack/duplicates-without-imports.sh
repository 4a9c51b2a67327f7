#!/usr/bin/env bash
# Counts the repeated places in the tree as `duplicates` does (the tool of
# the developers' library), with the lines inside Go import blocks blanked
# (line numbers kept): the tool passes over import lines but not the lines of
# an `import ( … )` block, and identical blocks of standard imports make
# about half of its pairs. Issue 10's note compares both counts.
#
#   hack/duplicates-without-imports.sh [duplicates flags, e.g. --most 40]
set -euo pipefail
command -v duplicates >/dev/null || { echo "duplicates is not on the PATH" >&2; exit 1; }
top=$(git rev-parse --show-toplevel)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cd "$top"
git ls-files -z | while IFS= read -r -d '' f; do
  mkdir -p "$tree/$(dirname "$f")"
  if [[ $f == *.go ]]; then
    awk '/^import \($/{inb=1; print; next} inb && /^\)$/{inb=0; print; next} inb{print ""; next} {print}' "$f" > "$tree/$f"
  else
    cp -P "$f" "$tree/$f"
  fi
done
duplicates --repo "$tree" --seconds 400 "$@"
