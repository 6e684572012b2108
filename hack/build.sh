#!/usr/bin/env bash
# Build the local control plane, Helm and SeaweedFS from Go modules (the Go module proxy is the only
# source): `hack/build.sh [control-plane|helm|seaweedfs|all]`, each part only once, on first need.
#
# Why wrapper modules: k8s.io/kubernetes requires its staging modules at v0.0.0 and maps them with
# `replace` to ./staging, and replaces in a dependency are ignored, so `go install` cannot build it.
# A tiny wrapper module that requires k8s.io/kubernetes and replaces every staging module with its
# matching v0.X.Y release builds it. etcd's server is a library; a three-line main calls etcdmain.
# Each build has its own wrapper module so that version selection in one cannot raise the other's
# shared k8s.io/* dependencies. Outputs go to $BOSUN_CACHE (default ~/.cache/bosun), keyed by the
# versions in hack/versions.env, so a second run (or a fresh clone) is a no-op.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

check_prerequisites() {
  need go "install Go 1.26 or newer (https://go.dev/doc/install or your distribution's package)"
  local proxy
  proxy="$(go env GOPROXY)"
  [ "$proxy" != "off" ] || die "GOPROXY is 'off': the build needs the Go module proxy"
}

module_download() { # module@version -> prints JSON; dies with a clear message on network failure
  local out
  if ! out="$(go mod download -json "$1" 2>&1)"; then
    die "cannot download $1 from the Go module proxy ($(go env GOPROXY)): is the network to it up?
$(echo "$out" | grep -m3 -E 'Error|error|dial|timeout' || true)"
  fi
  if echo "$out" | grep -q '"Error"'; then
    die "cannot download $1 from the Go module proxy: $(echo "$out" | grep '"Error"' | head -1)"
  fi
  echo "$out"
}

build_kubernetes() {
  log "kubernetes $KUBE_VERSION: resolving the module"
  local json gomod dir minor patch staging
  json="$(module_download "k8s.io/kubernetes@$KUBE_VERSION")"
  gomod="$(echo "$json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || die "k8s.io/kubernetes@$KUBE_VERSION: no go.mod in the download"
  minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
  patch="$(echo "$KUBE_VERSION" | cut -d. -f3)"
  staging="v0.$minor.$patch"

  dir="$BUILD_DIR/kubernetes-$KUBE_VERSION"
  mkdir -p "$dir"
  {
    echo "module bosun.local/kubernetes-build"
    echo
    grep -E '^go [0-9.]+$' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    # Every staging module the kubernetes module requires at v0.0.0, at its real release.
    grep -E '^[[:space:]]+k8s\.io/[^ ]+ v0\.0\.0([[:space:]]|$)' "$gomod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}' | sort -u
    echo ")"
  } > "$dir/go.mod"
  : > "$dir/go.sum"

  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version date ldflags="-s -w"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for p in "$pkg" "$cpkg"; do
    ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  local pkgs=()
  for b in "${KUBE_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "kubernetes $KUBE_VERSION: building ${KUBE_BINARIES[*]}$(last_cold kubernetes)"
  mkdir -p "$BIN_DIR"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" "${pkgs[@]}") \
    || die "building kubernetes $KUBE_VERSION failed (see the go output above)"
}

build_etcd() {
  log "etcd $ETCD_VERSION: building the server$(last_cold etcd)"
  module_download "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  local dir="$BUILD_DIR/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat > "$dir/go.mod" <<MOD
module bosun.local/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$dir/main.go" <<'SRC'
// Command etcd runs the etcd server from its library package.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
SRC
  mkdir -p "$BIN_DIR"
  (cd "$dir" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" .) \
    || die "building etcd $ETCD_VERSION failed (see the go output above)"
}

build_kwok() {
  log "kwok $KWOK_VERSION: building kwok and kwokctl (the simulated nodes)$(last_cold kwok)"
  module_download "sigs.k8s.io/kwok@$KWOK_VERSION" >/dev/null
  mkdir -p "$BIN_DIR"
  local ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
  GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" \
    || die "building kwok $KWOK_VERSION failed (see the go output above)"
}

build_helm() {
  log "helm $HELM_VERSION: building the Helm CLI (for the chart tests)$(last_cold helm)"
  module_download "helm.sh/helm/v3@$HELM_VERSION" >/dev/null
  mkdir -p "$(dirname "$HELM_BIN")"
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  GOBIN="$(dirname "$HELM_BIN")" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    || die "building helm $HELM_VERSION failed (see the go output above)"
}

# SeaweedFS: an S3-compatible server that keeps objects on disk, for the store tests and the fault
# harness (moto keeps them in memory, so it cannot be killed and restarted with its data). Its
# go.mod has a `replace`, which `go install pkg@version` refuses: a wrapper module repeats it.
build_seaweedfs() {
  log "seaweedfs $SEAWEEDFS_VERSION: building an S3 server (for the store tests and the fault harness)$(last_cold seaweedfs)"
  local json gomod dir
  json="$(module_download "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION")"
  gomod="$(echo "$json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  dir="$BUILD_DIR/seaweedfs-$SEAWEEDFS_VERSION"
  mkdir -p "$dir" "$(dirname "$SEAWEEDFS_BIN")"
  {
    echo "module bosun.local/seaweedfs-build"
    echo
    grep -E '^go [0-9.]+$' "$gomod"
    echo
    echo "require github.com/seaweedfs/seaweedfs $SEAWEEDFS_VERSION"
    echo
    grep -E '^replace ' "$gomod" || true
  } > "$dir/go.mod"
  : > "$dir/go.sum"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$SEAWEEDFS_BIN" \
    github.com/seaweedfs/seaweedfs/weed) || die "building seaweedfs $SEAWEEDFS_VERSION failed (see the go output above)"
}

# external-snapshotter: snapshot-controller (every cluster: it binds VolumeSnapshots to their
# contents, as in a real cluster) and csi-snapshotter (the real nodes' CSI driver's sidecar). Its
# go.mod replaces the client module with ./client, which a dependency cannot: a wrapper module
# requires the client at the same release instead and repeats the other replaces.
build_snapshotter() {
  log "external-snapshotter $SNAPSHOTTER_VERSION: building snapshot-controller and csi-snapshotter$(last_cold snapshotter)"
  local json gomod dir module=github.com/kubernetes-csi/external-snapshotter/v8
  json="$(module_download "$module@$SNAPSHOTTER_VERSION")"
  module_download "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION" >/dev/null
  gomod="$(echo "$json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  dir="$BUILD_DIR/external-snapshotter-$SNAPSHOTTER_VERSION"
  mkdir -p "$dir" "$SNAPSHOTTER_BIN_DIR"
  {
    echo "module bosun.local/snapshotter-build"
    echo
    grep -E '^go [0-9.]+$' "$gomod"
    echo
    echo "require ("
    echo "	$module $SNAPSHOTTER_VERSION"
    echo "	github.com/kubernetes-csi/external-snapshotter/client/v8 $SNAPSHOTTER_VERSION"
    echo ")"
    echo
    grep -E '^replace ' "$gomod" | grep -v '=> \./' || true
  } > "$dir/go.mod"
  : > "$dir/go.sum"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$SNAPSHOTTER_BIN_DIR/" \
    "$module/cmd/snapshot-controller" "$module/cmd/csi-snapshotter") \
    || die "building external-snapshotter $SNAPSHOTTER_VERSION failed (see the go output above)"
}

# Real nodes: kubelet and kube-proxy from the same wrapper module as the control plane (its build
# cache makes them quick), containerd and its runc shim, the CNI plugins, and the pause image built
# from Kubernetes' own C source into an OCI archive that each node's containerd imports.
NODE_BINARIES=(kubelet kube-proxy containerd containerd-shim-runc-v2 ctr runc bridge host-local loopback pause.tar)
build_nodes() {
  log "real nodes: building kubelet, kube-proxy, containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, CNI $CNI_PLUGINS_VERSION, pause $PAUSE_VERSION$(last_cold nodes)"
  command -v gcc >/dev/null 2>&1 || die "gcc is needed for runc and the pause image (apt-get install gcc libc6-dev)"
  if [ ! -f /usr/include/seccomp.h ]; then  # runc's seccomp filters (RuntimeDefault) link libseccomp
    log "installing libseccomp-dev (Debian)"
    { apt-get install -y -qq libseccomp-dev >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq libseccomp-dev >/dev/null; }; } \
      || die "apt-get install libseccomp-dev failed"
  fi
  [ -f "$BUILD_DIR/kubernetes-$KUBE_VERSION/go.mod" ] || build_kubernetes
  mkdir -p "$NODES_BIN_DIR"
  local kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1"
  kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
  (cd "$BUILD_DIR/kubernetes-$KUBE_VERSION" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$kube_ldflags" \
    -o "$NODES_BIN_DIR/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy) \
    || die "building kubelet and kube-proxy failed (see the go output above)"
  GOBIN="$NODES_BIN_DIR" CGO_ENABLED=0 go install -trimpath -tags no_btrfs -ldflags "-s -w" \
    "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" \
    || die "building containerd $CONTAINERD_VERSION failed (see the go output above)"
  # Debian's runc 1.1.5 is older than containerd 2.3 expects: runc from its module, with seccomp.
  GOBIN="$NODES_BIN_DIR" CGO_ENABLED=1 go install -trimpath -tags seccomp -ldflags "-s -w" \
    "github.com/opencontainers/runc@$RUNC_VERSION" || die "building runc $RUNC_VERSION failed (see the go output above)"
  GOBIN="$NODES_BIN_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "github.com/containernetworking/plugins/plugins/main/bridge@$CNI_PLUGINS_VERSION" \
    "github.com/containernetworking/plugins/plugins/ipam/host-local@$CNI_PLUGINS_VERSION" \
    "github.com/containernetworking/plugins/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
    || die "building the CNI plugins $CNI_PLUGINS_VERSION failed (see the go output above)"
  local source work
  source="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/build/pause/linux/pause.c"
  [ -f "$source" ] || die "no pause source at $source"
  work="$(mktemp -d)"
  mkdir -p "$work/rootfs"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-bosun" -o "$work/rootfs/pause" "$source" \
    || die "compiling the pause container failed"
  python3 "$HACK_DIR/oci-image" --rootfs "$work/rootfs" --name "registry.k8s.io/pause:$PAUSE_VERSION" \
    --entrypoint /pause --user 65535:65535 --out "$NODES_BIN_DIR/pause.tar" || die "packing the pause image failed"
  rm -rf "$work"
}

# Images for the real nodes, from Debian's packages (no registry is reachable): each a minimal
# bookworm (mmdebstrap) with the engine's packages and Bosun's entrypoint on top (hack/images/):
# PostgreSQL 15 as `postgres:15`, Redis 7 as `redis:7`, MariaDB 10.11 as `mariadb:10.11` (Debian has
# no MySQL: a mysql Database runs it by spec.image); and `bosun-http:1` and `:2`, busybox's httpd
# (busybox-static) serving one page, for Apps. Each archive is keyed by its entrypoint (a `.key`
# file beside it): an entrypoint changed rebuilds that image alone.
IMAGES=(postgres-15.tar redis-7.tar mariadb-10.11.tar bosun-http-1.tar bosun-http-2.tar)
build_images() {
  [ -f "$IMAGES_DIR/bosun-http-2.tar" ] || build_http_image
  debian_image postgres 15 postgresql-15 postgres-entrypoint
  debian_image redis 7 redis-server redis-entrypoint
  debian_image mariadb 10.11 mariadb-server,mariadb-client mariadb-entrypoint
}

image_key() { sha256sum "$HACK_DIR/images/$1" | cut -c1-12; }

debian_image() { # name tag packages entrypoint: docker.io/library/NAME:TAG from bookworm's PACKAGES
  local name=$1 tag=$2 packages=$3 entrypoint=$4 archive="$IMAGES_DIR/$1-$2.tar"
  [ -f "$archive" ] && [ "$(cat "$archive.key" 2>/dev/null)" = "$(image_key "$entrypoint")" ] && return 0
  log "images: building $name:$tag from Debian's packages ($packages)$(last_cold images)"
  local package
  for package in mmdebstrap:mmdebstrap psql:postgresql-client; do  # psql: the tests' row-counting client
    command -v "${package%%:*}" >/dev/null 2>&1 \
      || apt-get install -y -qq "${package#*:}" >/dev/null || die "apt-get install ${package#*:} failed"
  done
  local work
  work="$(mktemp -d)"
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/lib/llvm-*' \
    bookworm "$work/rootfs.tar" || die "mmdebstrap could not make the $name root filesystem"
  mkdir -p "$work/rootfs" "$IMAGES_DIR"
  tar -xf "$work/rootfs.tar" -C "$work/rootfs"
  install -m 0755 "$HACK_DIR/images/$entrypoint" "$work/rootfs/usr/local/bin/bosun-$name"
  python3 "$HACK_DIR/oci-image" --rootfs "$work/rootfs" --name "docker.io/library/$name:$tag" \
    --entrypoint "/usr/local/bin/bosun-$name" --env PATH=/usr/local/bin:/usr/bin:/bin \
    --out "$archive" || die "packing the $name image failed"
  image_key "$entrypoint" > "$archive.key"
  rm -rf "$work" "$IMAGES_DIR/registry/docker/registry/v2/repositories/library/$name"  # pushed again
}

build_http_image() {
  log "images: building bosun-http:1 and :2 (busybox httpd, from Debian's busybox-static)"
  local work tag
  work="$(mktemp -d)"
  (cd "$work" && apt-get download busybox-static >/dev/null 2>&1) \
    || { apt-get update -qq >/dev/null && (cd "$work" && apt-get download busybox-static >/dev/null 2>&1); } \
    || die "apt-get download busybox-static failed"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb" || die "unpacking busybox-static failed"
  mkdir -p "$work/rootfs/bin" "$work/rootfs/www" "$IMAGES_DIR"
  cp "$work/deb/bin/busybox" "$work/rootfs/bin/busybox"
  # Like most servers, it stops at once on SIGTERM (httpd as PID 1 would ignore it): a pod stopped
  # without a drain refuses whatever is still sent its way.
  printf '%s\n' '#!/bin/busybox sh' '/bin/busybox httpd -f -p 8080 -h /www &' "trap 'kill \$!; exit 0' TERM" 'wait' \
    > "$work/rootfs/bin/serve"
  chmod 0755 "$work/rootfs/bin/serve"
  for tag in 1 2; do
    echo "bosun-http $tag" > "$work/rootfs/www/index.html"
    python3 "$HACK_DIR/oci-image" --rootfs "$work/rootfs" --name "docker.io/library/bosun-http:$tag" \
      --entrypoint /bin/serve --out "$IMAGES_DIR/bosun-http-$tag.tar" || die "packing the bosun-http image failed"
  done
  rm -rf "$work"
  rm -rf "$IMAGES_DIR/registry/docker/registry/v2/repositories/library/bosun-http"  # pushed again
}

# How long each part took when `hack/measure-setup` last built it from empty caches (its results
# file, committed): printed before each build so a person knows what they are waiting for.
last_cold() { # part -> "about N min (cold, 2-core machine, DATE)" or nothing
  local results="$ROOT_DIR/benchmarks/results/setup.json"
  [ -f "$results" ] || return 0
  python3 - "$results" "$1" <<'PY' 2>/dev/null || true
import json, sys
data = json.load(open(sys.argv[1]))
seconds = data.get("parts", {}).get(sys.argv[2])
if seconds:
    print(f" (took {seconds / 60:.1f} min from empty caches on a {data.get('cores', '?')}-core machine, {data.get('date', '?')[:10]})")
PY
}

timed() { # part: build it; append "part seconds" to the cache's build log (hack/measure-setup reads it)
  local start=$SECONDS
  "build_$1"
  mkdir -p "$BOSUN_CACHE"
  echo "$1 $((SECONDS - start))" >> "$BOSUN_CACHE/build-times.tsv"
  log "$1: built in $((SECONDS - start)) s"
}

cached() { # part -> 0 if its binaries exist
  case "$1" in
    etcd) [ -x "$BIN_DIR/etcd" ] ;;
    kwok) [ -x "$BIN_DIR/kwok" ] && [ -x "$BIN_DIR/kwokctl" ] ;;
    kubernetes) local b; for b in "${KUBE_BINARIES[@]}"; do [ -x "$BIN_DIR/$b" ] || return 1; done ;;
    helm) [ -x "$HELM_BIN" ] ;;
    seaweedfs) [ -x "$SEAWEEDFS_BIN" ] ;;
    snapshotter) [ -x "$SNAPSHOTTER_BIN_DIR/snapshot-controller" ] && [ -x "$SNAPSHOTTER_BIN_DIR/csi-snapshotter" ] ;;
    nodes) local b; for b in "${NODE_BINARIES[@]}"; do [ -e "$NODES_BIN_DIR/$b" ] || return 1; done ;;
    images)
      local i
      for i in "${IMAGES[@]}"; do [ -f "$IMAGES_DIR/$i" ] || return 1; done
      for i in postgres-15:postgres redis-7:redis mariadb-10.11:mariadb; do
        [ "$(cat "$IMAGES_DIR/${i%%:*}.tar.key" 2>/dev/null)" = "$(image_key "${i#*:}-entrypoint")" ] || return 1
      done ;;
  esac
}

# Parts that do not depend on each other build at once: each spends part of its time downloading
# modules, which leaves a core free for another's compile. A failed part fails the whole build.
build_parts() { # part...
  local part pids=() names=() failed=()
  for part in "$@"; do
    if [ "$#" = 1 ]; then timed "$part"; return; fi
    timed "$part" &
    pids+=("$!"); names+=("$part")
  done
  local i
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
  [ "${#failed[@]}" = 0 ] || die "building ${failed[*]} failed (see the output above)"
}

usage() {
  cat >&2 <<'TXT'
usage: hack/build.sh [control-plane|helm|seaweedfs|all]...
  control-plane  etcd, KWOK, Kubernetes and external-snapshotter: what `hack/cluster up` and
                 `hack/demo` need (default)
  helm           the Helm CLI: the chart tests and install tests
  seaweedfs      an S3-compatible server: the log store tests and the fault harness
  nodes          kubelet, kube-proxy, containerd, CNI plugins, the pause image: real nodes
  images         the images real nodes run (postgres:15, redis:7, mariadb:10.11, from Debian's packages)
  all            everything hack/test needs (the real nodes and their images included)
TXT
  exit 2
}

main() {
  local want=() part
  [ "$#" -gt 0 ] || set -- control-plane
  for part in "$@"; do
    case "$part" in
      control-plane) want+=(etcd kwok kubernetes snapshotter) ;;
      helm | seaweedfs | snapshotter | nodes | images) want+=("$part") ;;
      all) want+=(etcd kwok kubernetes snapshotter helm seaweedfs nodes images) ;;
      -h | --help) usage ;;
      *) echo "hack/build.sh: unknown part '$part'" >&2; usage ;;
    esac
  done
  local missing=()
  for part in "${want[@]}"; do cached "$part" || missing+=("$part"); done
  if [ "${#missing[@]}" = 0 ]; then
    [ -n "${BOSUN_BUILD_QUIET:-}" ] || log "built already (${want[*]}), in $BOSUN_CACHE/bin"
    return
  fi
  check_prerequisites
  # One build at a time on this machine (hack/demo and hack/test started together, say): the
  # second waits, then finds built what the first built.
  mkdir -p "$BOSUN_CACHE"
  exec 9>"$BOSUN_CACHE/.build.lock"
  if ! flock -n 9; then
    log "another build is running in $BOSUN_CACHE: waiting for it"
    flock 9
  fi
  local waiting=("${missing[@]}")
  missing=()
  for part in "${waiting[@]}"; do cached "$part" || missing+=("$part"); done
  [ "${#missing[@]}" -gt 0 ] || { log "built meanwhile by the other build: ${waiting[*]}"; return; }
  local start=$SECONDS first=() later=()
  for part in "${missing[@]}"; do  # the real nodes' kubelet builds in the control plane's module
    case "$part" in nodes) later+=("$part") ;; *) first+=("$part") ;; esac
  done
  [ "${#first[@]}" = 0 ] || build_parts "${first[@]}"
  [ "${#later[@]}" = 0 ] || build_parts "${later[@]}"
  echo "wall:${missing[*]} $((SECONDS - start))" | tr ' ' '+' | sed 's/+\([0-9]*\)$/ \1/' >> "$BOSUN_CACHE/build-times.tsv"
  log "built ${missing[*]} in $((SECONDS - start)) s, into $BOSUN_CACHE/bin"
}

main "$@"
