#!/usr/bin/env bash
# kube-apiserver, kube-controller-manager and kube-scheduler, built from Debian's `kubernetes`
# source package (dependencies vendored) with Debian's Go toolchain unpacked beside it, in
# GOPATH mode, offline. Built once into $TOOLS_CACHE/kube-<debian version>/bin, reused after.
# Prints the bin directory.
. "$(dirname "$0")/common.sh"

"$CLUSTER_DIR/deb-src.sh" kubernetes
KUBE_DEB="${ENVPLANE_KUBE_DEB_VERSION:-$(apt-cache showsrc kubernetes | awk '/^Version:/ {print $2}' | sort -V | tail -1)}"
GO_PKG="${ENVPLANE_KUBE_GO:-golang-1.19}"
DEST="$TOOLS_CACHE/kube-$KUBE_DEB"
BINS=(kube-apiserver kube-controller-manager kube-scheduler)
if [ -f "$DEST/.complete" ]; then
  log "kube $KUBE_DEB: cached"; echo "$DEST/bin"; exit 0
fi

apt_install dpkg-dev  # dpkg-source, to unpack the source package with Debian's patches
WORK="$TOOLS_CACHE/build/kube-$KUBE_DEB"
rm -rf "$WORK" "$DEST"
mkdir -p "$WORK/dl" "$WORK/go" "$WORK/gopath/src/k8s.io"
t0=$SECONDS

log "fetching the kubernetes $KUBE_DEB source and $GO_PKG"
(
  cd "$WORK/dl"
  apt-get source -qq --download-only "kubernetes=$KUBE_DEB" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
  GO_VER="$(apt-cache policy "$GO_PKG-go" | awk '/Candidate:/ {print $2}')"
  if [ -z "$GO_VER" ] || [ "$GO_VER" = "(none)" ]; then  # package lists never fetched yet
    as_root apt-get update -qq
    GO_VER="$(apt-cache policy "$GO_PKG-go" | awk '/Candidate:/ {print $2}')"
  fi
  apt-get download -qq "$GO_PKG-go=$GO_VER" "$GO_PKG-src=$GO_VER" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
)
ls "$WORK"/dl/*.dsc "$WORK"/dl/"$GO_PKG"-go_*.deb "$WORK"/dl/"$GO_PKG"-src_*.deb >/dev/null
for deb in "$WORK"/dl/*.deb; do dpkg-deb -x "$deb" "$WORK/go"; done
GOROOT="$(cd "$WORK/go/usr/lib/go-"* && pwd)"
SRC="$WORK/gopath/src/k8s.io/kubernetes"
dpkg-source -x --no-check "$WORK"/dl/*.dsc "$SRC" >/dev/null
log "fetched and unpacked in $((SECONDS - t0)) s"

export GOROOT GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GO111MODULE=off GOPROXY=off \
  GOFLAGS= CGO_ENABLED=0 GOTOOLCHAIN=local PATH="$GOROOT/bin:$PATH"
cd "$SRC"
"$GOROOT/bin/go" version >&2

# The source does not ship pkg/generated/openapi (the API server's OpenAPI definitions): generate
# it as Makefile.generated_files does, over every package tagged `+k8s:openapi-gen=`.
t1=$SECONDS
go build -o "$WORK/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
inputs="$(
  find pkg cmd plugin staging/src -type f -name '*.go' -not -path '*/testdata/*' -not -path '*/_*' \
    | xargs grep -l '^// *+k8s:openapi-gen=' | xargs -n1 dirname | LC_ALL=C sort -u \
    | grep -v -e '^staging/src/k8s.io/sample-apiserver/' -e '^staging/src/k8s.io/code-generator/' \
    | sed -e 's|^staging/src/k8s.io/|vendor/k8s.io/|' -e 's|^|k8s.io/kubernetes/|' | paste -sd, -
)"
"$WORK/openapi-gen" --logtostderr -v 1 -i "$inputs" -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
  -r "$WORK/openapi-violations.report" --output-base "$GOPATH/src" 2>"$WORK/openapi-gen.log" \
  || { tail -20 "$WORK/openapi-gen.log" >&2; exit 1; }
test -s pkg/generated/openapi/zz_generated.openapi.go
log "openapi generated in $((SECONDS - t1)) s"

# Version stamps as hack/lib/version.sh sets them (the archive's commit and tag).
t2=$SECONDS
commit="$(sed -n "s/^ *KUBE_GIT_COMMIT='\([0-9a-f]*\)'.*/\1/p" hack/lib/version.sh | head -1)"
tag="$(sed -n "s/.*'tag: \(v[0-9][^ ,']*\)'.*/\1/p" hack/lib/version.sh | head -1)"
major="${tag#v}"; major="${major%%.*}"; minor="${tag#v*.}"; minor="${minor%%.*}"
ld="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
  ld="$ld -X '$pkg.gitVersion=$tag' -X '$pkg.gitCommit=$commit' -X '$pkg.gitTreeState=archive'"
  ld="$ld -X '$pkg.gitMajor=$major' -X '$pkg.gitMinor=$minor' -X '$pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
done
mkdir -p "$WORK/out"
for b in "${BINS[@]}"; do
  log "building $b"
  go build -trimpath -ldflags "$ld" -o "$WORK/out/$b" "./cmd/$b"
done
log "built in $((SECONDS - t2)) s"

mkdir -p "$DEST/bin"
cp "${BINS[@]/#/$WORK/out/}" "$DEST/bin/"
"$DEST/bin/kube-apiserver" --version >&2
printf '%s\n' "$tag" >"$DEST/VERSION"
printf 'kubernetes source %s, %s, built in %s s total\n' "$KUBE_DEB" "$("$GOROOT/bin/go" version)" \
  "$((SECONDS - t0))" >"$DEST/BUILD-INFO"
touch "$DEST/.complete"
[ -n "${ENVPLANE_KEEP_BUILD:-}" ] || rm -rf "$WORK"
log "kube $tag ready in $((SECONDS - t0)) s"
echo "$DEST/bin"
