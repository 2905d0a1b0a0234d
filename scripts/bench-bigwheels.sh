#!/usr/bin/env bash
# Big wheels (issue #15): 4 recipes whose wheels weigh ~700 MiB together (what a Jetson torch +
# vLLM + flash-attn set weighs). A no-op `build all` must not re-read them: it is timed against
# `sha256sum` of the same files, interleaved, medians (goal: no-op < 0.3 s and < 0.1x hashing).
# Also timed: `build all --verify-wheels`, which re-hashes every wheel on purpose.
#
# usage: scripts/bench-bigwheels.sh [REPEATS] [MIB_PER_WHEEL]   (default 5, 175)
set -euo pipefail
repeats=${1:-5}
mib=${2:-175}
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root"
jf=$(jetforge_bin release)
py=$(python3 -c "import sys; print(sys.executable)")
unset PIP_FIND_LINKS MAX_JOBS
export JETFORGE_CONFIG="$tmp/none.toml"

d="$tmp/big"
"$py" - "$d" "$mib" <<'EOF'
import os, sys, zipfile
d, mib = sys.argv[1], int(sys.argv[2])
for sub in ("recipes", "wheels"):
    os.makedirs(os.path.join(d, sub), exist_ok=True)
for name in ("torch", "torchvision", "vllm", "vllm-flash-attn"):
    dist = name.replace("-", "_")
    src = os.path.join(d, "src", name)
    os.makedirs(src, exist_ok=True)
    open(os.path.join(src, "setup.py"), "w").write(f"# {name}\n")
    whl = os.path.join(d, "wheels", f"{dist}-1.0-py3-none-any.whl")
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_STORED) as z:
        # Incompressible, like compiled CUDA kernels: the file is as big as its payload.
        with z.open(f"{dist}/_C.so", "w") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        z.writestr(f"{dist}/__init__.py", "")
        z.writestr(f"{dist}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        z.writestr(f"{dist}-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}-1.0.dist-info/RECORD", "")
    open(os.path.join(d, "recipes", f"{name}.toml"), "w").write(
        f'[package]\nname = "{name}"\nversion = "1.0"\n\n[source]\npath = "../src/{name}"\n\n'
        f'[build]\nsteps = ["cp {whl} ${{{{ out }}}}/"]\n')
EOF
rm -rf "$d/src/"*/.git
jfb() { (cd "$d" && JETFORGE_CACHE_DIR="$d/cache" "$jf" --recipes recipes --work-dir work \
          --target host --python "$py" --no-progress build all --system-site-packages "$@" \
          >/dev/null 2>"$d/last.err") || { echo "build failed"; tail -20 "$d/last.err"; exit 1; }; }
median() { "$py" -c 'import sys, statistics; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

jfb
size=$(du -cm "$d"/wheelhouse/*.whl | tail -1 | cut -f1)
echo "wheelhouse: 4 wheels, $size MiB"
noop=(); hash=(); verify=()
for i in $(seq "$repeats"); do
  t0=$(now); jfb; t1=$(now)
  sha256sum "$d"/wheelhouse/*.whl >/dev/null; t2=$(now)
  jfb --verify-wheels; t3=$(now)
  noop+=("$(echo "$t1 - $t0" | bc)"); hash+=("$(echo "$t2 - $t1" | bc)"); verify+=("$(echo "$t3 - $t2" | bc)")
done
n=$(median "${noop[@]}"); h=$(median "${hash[@]}"); v=$(median "${verify[@]}")
"$py" -c "import sys; n,h,v=map(float,sys.argv[1:]); print(f'no-op build all {n:.3f} s, sha256sum of the wheels {h:.3f} s, ratio {n/h:.3f} (goal: < 0.3 s and < 0.1); with --verify-wheels {v:.3f} s')" "$n" "$h" "$v"
