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

die() { echo "error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed or not on PATH: $2"
}
