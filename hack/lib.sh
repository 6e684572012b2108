# Shared shell helpers for hack/ scripts. Sourced, never run.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"

BOSUN_CACHE="${BOSUN_CACHE:-$HOME/.cache/bosun}"
BIN_DIR="$BOSUN_CACHE/bin/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BUILD_DIR="$BOSUN_CACHE/build"
HELM_BIN="$BOSUN_CACHE/bin/helm-$HELM_VERSION/helm"
SEAWEEDFS_BIN="$BOSUN_CACHE/bin/seaweedfs-$SEAWEEDFS_VERSION/weed"
SNAPSHOTTER_BIN_DIR="$BOSUN_CACHE/bin/external-snapshotter-$SNAPSHOTTER_VERSION"
# Keyed by what makes the images (their contents, not where this checkout is): a fresh clone reuses them.
# (No sha256sum or cut on PATH, as in a stripped-down shell: no key, and no build that needs one.)
IMAGES_DIR="$BOSUN_CACHE/images/$( (sha256sum < "$HACK_DIR/oci-image" | cut -c1-12) 2>/dev/null || echo unkeyed)"  # each image its own key too
NODES_BIN_DIR="$BOSUN_CACHE/bin/nodes-k8s-$KUBE_VERSION-containerd-$CONTAINERD_VERSION-runc-$RUNC_VERSION-cni-$CNI_PLUGINS_VERSION"

die() { echo "error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed or not on PATH: $2"
}

# Until the API server serves every Bosun kind: discovery lists App, Database and Operation and a
# server-side dry-run create of each succeeds (CRDs are Established seconds before that on a new
# cluster). The arguments are the kubectl command to use, e.g. `wait_bosun_served kubectl`; with
# --with-policies first, also until the admission policies stamp a new Operation with its creator.
wait_bosun_served() {
  local deadline=$((SECONDS + ${BOSUN_SERVED_TIMEOUT:-90})) out="" stamp=""
  if [ "${1:-}" = --with-policies ]; then stamp="bosun.dev/created-by"; shift; fi
  while :; do
    if [ "$("$@" api-resources --api-group=bosun.dev -o name 2>/dev/null | grep -cE '^(apps|databases|operations)\.bosun\.dev$')" = 3 ] &&
      out="$("$@" create --dry-run=server -n default -o yaml -f "$HACK_DIR/cluster.d/probe-objects.yaml" 2>&1)" &&
      { [ -z "$stamp" ] || grep -q "$stamp" <<<"$out"; }; then
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      die "the API server does not serve Bosun's kinds after ${BOSUN_SERVED_TIMEOUT:-90} s (are the CRDs applied? kubectl get crd | grep bosun.dev): ${out:-discovery does not list apps, databases and operations in bosun.dev}"
    fi
    sleep 0.5
  done
}
