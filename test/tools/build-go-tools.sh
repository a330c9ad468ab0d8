#!/usr/bin/env bash
# Builds the real programs the tests and benches run beside ours, from the Go module proxy:
#   Kubo (the IPFS daemon)            -> $TOOLS_BIN/ipfs
#   ipfs-cluster-ctl / -service / -follow 1.1.6
#                                     -> $TOOLS_BIN/ipfs-cluster-ctl, ipfs-cluster-service, ipfs-cluster-follow
# Nothing here ships in the product. Skips whatever is already built (or IPFS_BIN / ipfs on PATH for Kubo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
TOOLS_BIN=${TOOLS_BIN:-$root/.tools/bin}
KUBO_VERSION=${KUBO_VERSION:-v0.43.1}
CLUSTER_VERSION=${CLUSTER_VERSION:-v1.1.6}
mkdir -p "$TOOLS_BIN"
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=${GOFLAGS:--mod=mod}

build_main_module() { # module version outdir cmd...
  local mod=$1 ver=$2; shift 2
  local dir
  dir=$(go mod download -json "$mod@$ver" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  [ -n "$dir" ] || { echo "build-go-tools: cannot download $mod@$ver" >&2; return 1; }
  # The module cache is read-only; build from a writable copy so go.sum updates are possible.
  local work
  work=$(mktemp -d)
  cp -r "$dir/." "$work/"
  chmod -R u+w "$work"
  # Kubo v0.43.1 replaces go-libp2p with a fork (github.com/lidel/go-libp2p) that the module
  # proxy does not serve (403). go-libp2p v0.51.0 is the first upstream release that builds with
  # the quic-go/webtransport-go versions Kubo pins, so we use it instead (v0.49.0 does not build).
  if grep -q 'github.com/lidel/go-libp2p' "$work/go.mod"; then
    (cd "$work" && go mod edit -dropreplace github.com/libp2p/go-libp2p \
      -require=github.com/libp2p/go-libp2p@v0.51.0)
  fi
  (cd "$work" && for pair in "$@"; do
     out=${pair%%=*}; pkg=${pair#*=}
     echo "build-go-tools: building $mod@$ver $pkg" >&2
     go build -trimpath -o "$TOOLS_BIN/$out" "$pkg"
   done)
  rm -rf "$work"
}

if [ -n "${IPFS_BIN:-}" ] && [ -x "${IPFS_BIN}" ]; then
  echo "build-go-tools: using IPFS_BIN=$IPFS_BIN" >&2
elif [ ! -x "$TOOLS_BIN/ipfs" ]; then
  if command -v ipfs >/dev/null 2>&1; then
    ln -sf "$(command -v ipfs)" "$TOOLS_BIN/ipfs"
  else
    build_main_module github.com/ipfs/kubo "$KUBO_VERSION" ipfs=./cmd/ipfs
  fi
fi
# Only the missing programs are built (one module copy for all of them).
cluster_cmds=()
for prog in ipfs-cluster-ctl ipfs-cluster-service ipfs-cluster-follow; do
  [ -x "$TOOLS_BIN/$prog" ] || cluster_cmds+=("$prog=./cmd/$prog")
done
if [ ${#cluster_cmds[@]} -gt 0 ]; then
  build_main_module github.com/ipfs-cluster/ipfs-cluster "$CLUSTER_VERSION" "${cluster_cmds[@]}"
fi
ls -la "$TOOLS_BIN" >&2
