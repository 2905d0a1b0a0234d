#!/usr/bin/env bash
# Build benchmarks on the fixture projects (tests/fixtures), measured side by side in one run:
#   P1  no-op `build all` vs the full build of the fixture set   (target <= 1% and < 0.3 s)
#   P4  `jetforge build first` vs `pip wheel --no-build-isolation` by hand (target <= 1.05x)
#   P5  a build that is OOM-killed and retried vs one started at the right jobs (target <= 1.5x)
#   P3  the jobs policy in a memory cgroup: OOM kills and makespan of --jobs 2, --jobs 4 and the
#       policy, for a 700 MiB cap with 300 MiB jobs and a 2.8 GiB cap with 800 MiB jobs (target:
#       the policy has 0 kills and <= 1.2x the makespan of the best fixed jobs that had 0 kills)
# P5 and P3 need root and a cgroup v1 memory controller (as on these machines); they are skipped
# otherwise.
#
# usage: scripts/bench-build.sh [REPEATS]   (default 3; medians are reported)
set -euo pipefail
repeats=${1:-3}
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
cg=""
cleanup() { [ -n "$cg" ] && rmdir "$cg" 2>/dev/null; [ -n "${cg3:-}" ] && rmdir "$cg3" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

cd "$root"
jf=$(jetforge_bin release)
# The interpreter itself, not a pyenv shim: the host target asks it for its version.
py=$(python3 -c "import sys; print(sys.executable)")
unset PIP_FIND_LINKS MAX_JOBS
export JETFORGE_CONFIG="$tmp/none.toml"

# jetforge in project dir $1 with the remaining args; the build venv sees the system packages.
jfb() { (cd "$1" && JETFORGE_CACHE_DIR="$1/cache" "$jf" --recipes recipes --work-dir work \
          --target host --no-progress build --python "$py" --system-site-packages "${@:2}" >/dev/null 2>&1); }
copy() { rm -rf "$2"; cp -r "$root/tests/fixtures/$1" "$2"; }
median() { python3 -c 'import sys, statistics; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

echo "== P1: no-op build all vs full build"
full=(); noop=()
for i in $(seq "$repeats"); do
  copy project "$tmp/p1"
  t0=$(now); jfb "$tmp/p1"; t1=$(now); jfb "$tmp/p1"; t2=$(now)
  full+=("$(echo "$t1 - $t0" | bc)"); noop+=("$(echo "$t2 - $t1" | bc)")
done
f=$(median "${full[@]}"); n=$(median "${noop[@]}")
python3 -c "import sys; f,n=map(float,sys.argv[1:]); print(f'full {f:.3f} s, no-op {n:.3f} s, ratio {n/f:.4f} (target <= 0.01 and no-op < 0.3 s)')" "$f" "$n"

echo "== P4: jetforge build first vs pip wheel by hand"
copy project "$tmp/p4"
jfb "$tmp/p4" first   # creates the build venv once; both sides then build from a clean tree
jet=(); steps=(); hand=()
log="$tmp/p4/work/recipes-host/logs/first/01-step-1.log"
for i in $(seq "$repeats"); do
  rm -rf "$tmp/p4/work/recipes-host/src/first/build" "$log"
  t0=$(now); jfb "$tmp/p4" first --force first; t1=$(now)
  # The step alone: its log is created when the step starts and last written when it ends.
  steps+=("$(stat -c '%.9Y - %.9W' "$log" | bc)")
  rm -rf "$tmp/hand"; cp -r "$root/tests/fixtures/project/src/first" "$tmp/hand"
  t2=$(now); (cd "$tmp/hand" && "$py" -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps --no-index -w out . >/dev/null 2>&1); t3=$(now)
  jet+=("$(echo "$t1 - $t0" | bc)"); hand+=("$(echo "$t3 - $t2" | bc)")
done
j=$(median "${jet[@]}"); st=$(median "${steps[@]}"); h=$(median "${hand[@]}")
python3 -c "import sys; j,st,h=map(float,sys.argv[1:]); print(f'jetforge {j:.3f} s in all (the step {st:.3f} s; the rest: fingerprints, wheel checks, install into the verify venv, verify, wheelhouse), by hand {h:.3f} s; ratio {j/h:.3f} in all, {st/h:.3f} for the step (target <= 1.05)')" "$j" "$st" "$h"

echo "== P5: OOM-killed and retried vs started at the right jobs"
if ! cg=$(memory_cgroup "jf-bench-$$" 500M); then
  cg=""; echo "skipped: cannot create a memory cgroup here (needs root and cgroup v1)"; exit 0
fi
in_cg() { bash -c "echo \$\$ > $cg/cgroup.procs; exec \"\$@\"" bash "$@"; }
retry=(); right=()
for i in $(seq "$repeats"); do
  copy hog "$tmp/p5a"; copy hog "$tmp/p5b"
  t0=$(now); in_cg bash -c "$(declare -f jfb); jf=$jf py=$py; jfb $tmp/p5a --jobs 4"; t1=$(now)
  in_cg bash -c "$(declare -f jfb); jf=$jf py=$py; jfb $tmp/p5b --jobs 2"; t2=$(now)
  [ -e "$tmp/p5a/work/recipes-host/src/hog/ran-with-2-jobs" ] || { echo "P5: the retry did not happen"; exit 1; }
  retry+=("$(echo "$t1 - $t0" | bc)"); right+=("$(echo "$t2 - $t1" | bc)")
done
a=$(median "${retry[@]}"); b=$(median "${right[@]}")
python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'OOM + retry {a:.3f} s, right jobs {b:.3f} s, ratio {a/b:.3f} (target <= 1.5)')" "$a" "$b"

echo "== P3: jobs policy in a memory cgroup (6 objects per build)"
rmdir "$cg"; cg=""
# p3 CAP MIB JOBS: one build of the hog set with MIB per job in a fresh cgroup capped at CAP;
# prints "seconds oom_kills".
p3() {
  cg3=$(memory_cgroup "jf-bench-p3-$$" "$1")
  copy hog "$tmp/p3"
  local gib; gib=$(python3 -c "print(round($2 / 1024, 4))")
  sed -i "s|\"python hog.py\"|\"HOG_OBJECTS=6 HOG_MIB=$2 python hog.py\"|" "$tmp/p3/recipes/hog.toml"
  printf '\n[jobs]\nmem_per_job_gib = %s\n' "$gib" >> "$tmp/p3/recipes/hog.toml"
  local jobs=(); [ "$3" = policy ] || jobs=(--jobs "$3")
  local t0 t1; t0=$(now)
  bash -c "echo \$\$ > $cg3/cgroup.procs; $(declare -f jfb); jf=$jf py=$py; jfb $tmp/p3 ${jobs[*]}" || true
  t1=$(now)
  local kills; kills=$(awk '$1=="oom_kill"{print $2}' "$cg3/memory.oom_control"); kills=${kills:-?}
  [ -e "$tmp/p3/wheelhouse/hog-1.0.0-py3-none-any.whl" ] || kills="$kills (build failed)"
  rmdir "$cg3"
  echo "$(echo "$t1 - $t0" | bc) $kills"
}
for case in "700M 300" "2867M 800"; do   # 2867 MiB = 2.8 GiB
  set -- $case
  declare -A span=() kill=()
  for i in $(seq "$repeats"); do
    for j in 2 4 policy; do
      read -r t k < <(p3 "$1" "$2" "$j")
      span[$j]="${span[$j]:-} $t"; kill[$j]="${kill[$j]:-} $k"
    done
  done
  for j in 2 4 policy; do
    # shellcheck disable=SC2086
    echo "cap $1, $2 MiB per job, jobs $j: makespan $(median ${span[$j]}) s, OOM kills per run:${kill[$j]}"
  done
  unset span kill
done
