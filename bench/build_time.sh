#!/usr/bin/env bash
# Cold build time of README command 1's build step, before and after a change, ccache off, each from a
# fresh clone, one after the other:  bash bench/build_time.sh BEFORE_COMMIT [AFTER_COMMIT]
# BEFORE is built whole (as command 1 did up to f8f967a), AFTER with the runtime preset.
set -euo pipefail
before=${1:?usage: bench/build_time.sh BEFORE_COMMIT [AFTER_COMMIT]} after=${2:-HEAD}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
export CCACHE_DISABLE=1
build() {  # name commit build-args...
  local name=$1 commit=$2
  shift 2
  git clone -q "$repo" "$root/$name" && git -C "$root/$name" checkout -q "$commit"
  (cd "$root/$name" && cmake --preset release >/dev/null 2>&1)
  local start=$SECONDS
  (cd "$root/$name" && cmake --build "$@" >"$root/$name.log" 2>&1)
  echo "$name ($commit, cmake --build $*): $((SECONDS - start)) s, $(grep -c 'Building CXX' "$root/$name.log") compilations"
}
build after "$after" --preset runtime
build before "$before" --preset release
