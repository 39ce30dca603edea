#!/usr/bin/env bash
# `make cluster`: every real tool the realtools tests use, built or fetched once into
# $TOOLS_CACHE (default /var/cache/envplane-tools, override with ENVPLANE_TOOLS_CACHE), then
# linked as $TOOLS_CACHE/bin/<tool> to the versions this checkout pins. Idempotent: a second
# run only checks the cache (a few seconds).
. "$(dirname "$0")/common.sh"
t0=$SECONDS
mkdir -p "$TOOLS_CACHE/bin"
link() {  # link DIR TOOL...
  local dir="$1" t; shift
  for t in "$@"; do
    ln -sfn "$dir/$t" "$TOOLS_CACHE/bin/.$t.new"
    mv -Tf "$TOOLS_CACHE/bin/.$t.new" "$TOOLS_CACHE/bin/$t"
  done
}
link "$("$CLUSTER_DIR/etcd.sh")" etcd etcdctl
link "$("$CLUSTER_DIR/terraform.sh")" terraform
link "$("$CLUSTER_DIR/helm.sh")" helm kubectl
link "$("$CLUSTER_DIR/kube.sh")" kube-apiserver kube-controller-manager kube-scheduler
log "tools ready in $((SECONDS - t0)) s:"
for t in "$TOOLS_CACHE"/bin/*; do printf '  %s -> %s\n' "$t" "$(readlink -f "$t")"; done
