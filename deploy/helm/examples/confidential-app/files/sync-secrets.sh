# Keeps $DST (the pod's tmpfs) in step with $SRC (the trust agent's
# directory on the node's tmpfs) for the secrets $NAMES: a new or rotated
# value is copied (0440, replaced atomically), a dropped one is deleted.
set -u
umask 0227
while true; do
  for n in $NAMES; do
    if [ -f "$SRC/$n" ]; then
      if ! cmp -s "$SRC/$n" "$DST/$n"; then
        cp "$SRC/$n" "$DST/.$n.tmp" && chmod 0440 "$DST/.$n.tmp" && mv -f "$DST/.$n.tmp" "$DST/$n"
      fi
    else
      rm -f "$DST/$n"
    fi
  done
  sleep "$INTERVAL"
done
