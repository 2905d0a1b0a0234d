#!/usr/bin/env bash
# Scaling with the number of recipes (issue #15): synthetic sets of 10/100/1000/2000 recipes,
# local sources, steps that copy a pre-made wheel. Per size: `check`, `plan all` (wheelhouse
# populated) and a no-op `build all`, each timed REPEATS times with the sizes interleaved, then
# medians, the cost per recipe and the growth ratio 2000/1000 (goal <= 2.2: linear; and a no-op
# of 1000 recipes < 0.5 s).
#
# One recipe in ten is a `kind = "source"` tree; the source trees form a chain and every wheel
# recipe depends on one of them, so the dependency graph has n edges (a wheel recipe depending
# on another wheel recipe would make the one-time full build install wheels with pip per recipe).
#
# usage: scripts/bench-scale.sh [REPEATS] [SIZES…]   (default 5; 10 100 1000 2000)
set -euo pipefail
repeats=${1:-5}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000 2000)
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root"
jf=$(jetforge_bin release)
# The interpreter itself, not a pyenv shim: the host target asks it for its version.
py=$(python3 -c "import sys; print(sys.executable)")
unset PIP_FIND_LINKS MAX_JOBS
export JETFORGE_CONFIG="$tmp/none.toml"

# make_set DIR N: recipes/, src/ and wheels/ of a synthetic set of N recipes.
make_set() {
  "$py" - "$1" "$2" <<'EOF'
import os, sys, zipfile
d, n = sys.argv[1], int(sys.argv[2])
for sub in ("recipes", "src", "wheels"):
    os.makedirs(os.path.join(d, sub), exist_ok=True)
sources = [i for i in range(n) if i % 10 == 0]
for i in range(n):
    name = f"pkg-{i:04d}"
    src = os.path.join(d, "src", name)
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "setup.py"), "w") as f:
        f.write(f"# {name}\n")
    if i % 10 == 0:
        prev = f'\n[depends]\nrecipes = ["pkg-{i - 10:04d}"]\n' if i else ""
        toml = f'[package]\nname = "{name}"\nversion = "1.0"\n\n[source]\npath = "../src/{name}"\n\n[output]\nkind = "source"\n{prev}'
    else:
        dist = name.replace("-", "_")
        whl = os.path.join(d, "wheels", f"{dist}-1.0-py3-none-any.whl")
        with zipfile.ZipFile(whl, "w") as z:
            z.writestr(f"{dist}/__init__.py", "")
            z.writestr(f"{dist}-1.0.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
            z.writestr(f"{dist}-1.0.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            z.writestr(f"{dist}-1.0.dist-info/RECORD", "")
        dep = f"pkg-{(i // 10) * 10:04d}"
        toml = (f'[package]\nname = "{name}"\nversion = "1.0"\n\n[source]\npath = "../src/{name}"\n\n'
                f'[depends]\nrecipes = ["{dep}"]\n\n[build]\nsteps = ["cp {whl} ${{{{ out }}}}/"]\n')
    with open(os.path.join(d, "recipes", f"{name}.toml"), "w") as f:
        f.write(toml)
EOF
}

# jfr DIR ARGS…: jetforge on the set in DIR (host target, the interpreter named).
jfr() { (cd "$1" && JETFORGE_CACHE_DIR="$1/cache" "$jf" --recipes recipes --work-dir work \
          --target host --python "$py" --no-progress "${@:2}" >/dev/null 2>"$1/last.err") \
          || { echo "failed: jetforge ${*:2} in $1"; tail -20 "$1/last.err"; exit 1; }; }
median() { "$py" -c 'import sys, statistics; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

for n in "${sizes[@]}"; do
  make_set "$tmp/s$n" "$n"
  t0=$(now); jfr "$tmp/s$n" build all --system-site-packages; t1=$(now)
  echo "set of $n recipes: full build $(echo "$t1 - $t0" | bc) s (once, not measured further)"
done

declare -A times
for i in $(seq "$repeats"); do
  for n in "${sizes[@]}"; do
    for what in check plan build; do
      case $what in
        check) args=(check) ;;
        plan) args=(plan all) ;;
        build) args=(build all --system-site-packages) ;;
      esac
      t0=$(now); jfr "$tmp/s$n" "${args[@]}"; t1=$(now)
      times[$what.$n]="${times[$what.$n]:-} $(echo "$t1 - $t0" | bc)"
    done
  done
done

printf '%-8s %8s %10s %14s\n' what recipes median_s per_recipe_ms
for what in check plan build; do
  for n in "${sizes[@]}"; do
    # shellcheck disable=SC2086
    m=$(median ${times[$what.$n]})
    printf '%-8s %8d %10.3f %14.3f\n' "$what" "$n" "$m" "$(echo "$m * 1000 / $n" | bc -l)"
    times[med.$what.$n]=$m
  done
done
if [ -n "${times[med.build.1000]:-}" ] && [ -n "${times[med.build.2000]:-}" ]; then
  for what in check plan build; do
    "$py" -c "import sys; a,b=map(float,sys.argv[2:]); print(f'{sys.argv[1]}: growth 2000/1000 = {b/a:.2f} (goal <= 2.2)')" \
      "$what" "${times[med.$what.1000]}" "${times[med.$what.2000]}"
  done
  "$py" -c "import sys; t=float(sys.argv[1]); print(f'no-op build all of 1000 recipes: {t:.3f} s (goal < 0.5 s)')" "${times[med.build.1000]}"
fi
