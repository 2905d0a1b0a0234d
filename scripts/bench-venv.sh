#!/usr/bin/env bash
# Benchmarks a fresh work dir's fixed cost (issue #16 P8): the build venv and its build
# requirements, on a recipe whose step costs nothing. The same warm cache dir (wheel cache and
# pip seed filled by a priming build) for every row; each row is a fresh work dir:
#   fast  the pip seed and build requirements from the wheel cache first (the default);
#   seed  the pip seed only (JETFORGE_BUILD_REQS_CACHE_FIRST=0: `pip wheel` asks the index);
#   cache build requirements from the cache only (JETFORGE_VENV_SEED=0: ensurepip);
#   slow  neither (both switches 0: what every fresh work dir paid before).
# The rows are interleaved ROUNDS times and the median is printed. The build requirements are
# PEP 517's default (setuptools, wheel) from pip's configured index, so it needs that index.
#
# usage: scripts/bench-venv.sh [ROUNDS]   (default 3)
set -euo pipefail
rounds=${1:-3}
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/recipes" "$tmp/src/noop"
echo "noop" > "$tmp/src/noop/README"
cat > "$tmp/recipes/noop.toml" <<'EOF'
[package]
name = "noop"
version = "1.0.0"
[source]
path = "../src/noop"
[output]
kind = "tree"
[build]
steps = ["mkdir -p ${{ out }} && cp README ${{ out }}/"]
EOF

cd "$root"
jf=$(jetforge_bin debug)

# build NAME [VAR=VALUE…]: one build in a fresh work dir with the shared cache; prints seconds.
build() {
  local name=$1
  shift
  local t0 t1
  t0=$(now)
  env "$@" JETFORGE_CACHE_DIR="$tmp/cache" JETFORGE_CONFIG="" JETFORGE_COMPILER_CACHE=none \
    "$jf" --recipes "$tmp/recipes" --work-dir "$tmp/work-$name-$RANDOM" --target host --no-progress \
    -v build --python python3 --force all >"$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out"; exit 1; }
  t1=$(now)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}

build prime >/dev/null
fast=() seed=() cache=() slow=()
for _ in $(seq "$rounds"); do
  fast+=("$(build fast)")
  seed+=("$(build seed JETFORGE_BUILD_REQS_CACHE_FIRST=0)")
  cache+=("$(build cache JETFORGE_VENV_SEED=0)")
  slow+=("$(build slow JETFORGE_VENV_SEED=0 JETFORGE_BUILD_REQS_CACHE_FIRST=0)")
done
grep -q "build venv: pip from the seed" "$tmp/fast.out" || { echo "the fast build did not use the seed" >&2; exit 1; }

python3 - "$(nproc)" "${fast[*]}" "${seed[*]}" "${cache[*]}" "${slow[*]}" <<'PY'
import statistics, sys
cpus = sys.argv[1]
rows = {k: list(map(float, v.split())) for k, v in zip(("fast", "seed", "cache", "slow"), sys.argv[2:6])}
med = {k: statistics.median(v) for k, v in rows.items()}
print(f"fresh work dir, warm caches, a no-op recipe; {cpus} CPUs; median of {len(rows['fast'])}")
labels = {
    "slow": "python -m venv + pip wheel from the index (before)",
    "cache": "python -m venv + build reqs from the wheel cache",
    "seed": "pip seed + pip wheel from the index",
    "fast": "pip seed + build reqs from the wheel cache (now)",
}
for k in ("slow", "cache", "seed", "fast"):
    print(f"  {labels[k]:<52} {med[k]:6.2f} s   ({' '.join(f'{x:.2f}' for x in rows[k])})")
print(f"ratio now/before: {med['fast'] / med['slow']:.2f}  (saved {med['slow'] - med['fast']:.2f} s per fresh work dir)")
PY
