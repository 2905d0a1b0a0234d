#!/usr/bin/env bash
# Makes the bare bitsandbytes mirror that scripts/gpu-e2e.sh builds from, for carrying to a
# machine without network. A stored snapshot may lack objects of old history, so this is a
# single-commit bare clone of the recipe's tag: the commit id stays the real one (nothing is
# rewritten), and the script checks that the tag resolves to the recipe's commit.
#
# usage: scripts/make-bnb-mirror.sh SNAPSHOT_GIT_DIR [OUT_DIR]
#   SNAPSHOT_GIT_DIR  a clone of github.com/bitsandbytes-foundation/bitsandbytes (bare or not)
#   OUT_DIR           default .device-carry/e2e (gitignored; carry `.device-carry`)
set -euo pipefail
src=${1:?usage: make-bnb-mirror.sh SNAPSHOT_GIT_DIR [OUT_DIR]}
out=${2:-.device-carry/e2e}
recipe=recipes/jp6-vllm-0.12/bitsandbytes.toml
tag=$(sed -n 's/^tag = "\(.*\)"/\1/p' "$recipe")
commit=$(sed -n 's/^commit = "\(.*\)"/\1/p' "$recipe")
mkdir -p "$out"
rm -rf "$out/bitsandbytes.git"
git clone --quiet --bare --depth 1 --branch "$tag" "file://$(cd "$src" && pwd)" "$out/bitsandbytes.git"
got=$(git -C "$out/bitsandbytes.git" rev-parse "$tag^{commit}")
if [ "$got" != "$commit" ]; then
    echo "error: tag $tag is $got in the mirror, the recipe pins $commit" >&2
    exit 1
fi
size=$(du -sm "$out/bitsandbytes.git" | cut -f1)
echo "mirror: $out/bitsandbytes.git (${size} MiB), $tag = $commit"
if [ "$size" -gt 40 ]; then
    echo "error: over 40 MiB, too big to carry" >&2
    exit 1
fi
