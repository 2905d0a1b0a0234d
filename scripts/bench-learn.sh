#!/usr/bin/env bash
# Learned MAX_JOBS and the cost of measuring, side by side in one run:
#   P3b  a recipe whose mem_per_job_gib is 2x too high, and one 2x too low, built once in a
#        4 GiB memory cgroup: the next plan's jobs vs the best fixed --jobs (fastest without an
#        OOM kill, found by trying 1..5) - target: within one; and the too-low recipe is never
#        OOM-killed twice (counted over its first build and a forced second one)
#   P4s  the step sampler's own CPU time during the P4 fixture build (`build first`) vs the
#        build's wall time - target <= 1%
# The stand-in compiler: each of MAX_JOBS jobs holds 1 GiB while it works through its share of
# 12 units of 1 s, so more jobs finish sooner until the cgroup kills one (times: that step
# alone, from the recipe's state, so venv creation and packing do not blur them). The machine is a
# fake host root (JETFORGE_HOST_ROOT) that says 4 GiB and 8 CPUs, matching the cgroup.
# P3b needs root and a cgroup v1 memory controller (as on these machines); it is skipped otherwise.
#
# usage: scripts/bench-learn.sh
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
cg=""
cleanup() { [ -n "$cg" ] && rmdir "$cg" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

cd "$root"
jf=$(jetforge_bin release)
py=$(python3 -c "import sys; print(sys.executable)")
unset PIP_FIND_LINKS MAX_JOBS
export JETFORGE_CONFIG="$tmp/none.toml"

echo "== P4s: sampler CPU time during the P4 fixture build"
rm -rf "$tmp/p4"; cp -r "$root/tests/fixtures/project" "$tmp/p4"
run_p4() { (cd "$tmp/p4" && JETFORGE_CACHE_DIR="$tmp/p4/cache" "$jf" --recipes recipes --work-dir work \
    --target host --no-progress build --python "$py" --system-site-packages first "$@" >/dev/null 2>&1); }
run_p4   # the build venv, once
# Polls jetforge's threads every 20 ms and keeps the last CPU time seen of each sampler thread.
python3 - "$jf" "$tmp/p4" "$py" <<'EOF'
import os, subprocess, sys, time
jf, d, py = sys.argv[1:]
tick = os.sysconf("SC_CLK_TCK")
env = dict(os.environ, JETFORGE_CACHE_DIR=d + "/cache")
walls, cpus = [], []
for _ in range(3):
    t0 = time.time()
    p = subprocess.Popen([jf, "--recipes", "recipes", "--work-dir", "work", "--target", "host",
                          "--no-progress", "build", "--python", py, "--system-site-packages",
                          "first", "--force", "first"], cwd=d, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = {}
    while p.poll() is None:
        try:
            for tid in os.listdir(f"/proc/{p.pid}/task"):
                try:
                    stat = open(f"/proc/{p.pid}/task/{tid}/stat").read()
                except OSError:
                    continue
                if "(jetforge-sample" in stat:
                    f = stat[stat.rfind(")") + 2:].split()
                    seen[tid] = (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
        time.sleep(0.02)
    walls.append(time.time() - t0)
    cpus.append(sum(seen.values()))
wall, cpu = sorted(walls)[1], sorted(cpus)[1]
print(f"build {wall:.3f} s, sampler CPU {cpu:.3f} s; "
      f"ratio {cpu / wall:.4f} (target <= 0.01; CPU time has {1 / tick:.2f} s resolution)")
EOF

echo "== P3b: learning from one build with a wrong mem_per_job_gib"
if ! cg=$(memory_cgroup "jf-bench-learn-$$" 4G); then
  cg=""; echo "skipped: cannot create a memory cgroup here (needs root and cgroup v1)"; exit 0
fi
host="$tmp/host"
mkdir -p "$host/proc/self" "$host/proc/sys/kernel" "$host/sys/devices/system/cpu"
printf 'MemTotal: 4194304 kB\nMemFree: 4194304 kB\nMemAvailable: 4194304 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n' > "$host/proc/meminfo"
echo "0::/" > "$host/proc/self/cgroup"
uname -m > "$host/proc/sys/kernel/arch"
echo 0-7 > "$host/sys/devices/system/cpu/online"

project() {   # project DIR MEM_PER_JOB_GIB
  mkdir -p "$1/recipes" "$1/src/eater"
  cat > "$1/recipes/eater.toml" <<EOF
[package]
name = "eater"
version = "1.0.0"
[source]
path = "../src/eater"
[jobs]
mem_per_job_gib = $2
[build]
steps = [
  "python eat.py",
  "python -m pip wheel --no-build-isolation --no-deps --no-index -w \${{ out }} .",
]
EOF
  cat > "$1/src/eater/eat.py" <<'EOF'
import math, os, subprocess, sys
jobs = int(os.environ["MAX_JOBS"])
share = math.ceil(12 / jobs) * 1.0
child = f"b = b'x' * (1 << 30); import time; time.sleep({share})"
codes = [p.wait() for p in [subprocess.Popen([sys.executable, "-c", child]) for _ in range(jobs)]]
if -9 in codes:
    print("c++: fatal error: Killed signal terminated program cc1plus", flush=True)
    sys.exit(1)
EOF
  printf "from setuptools import setup\nsetup(name='eater', version='1.0.0', py_modules=['eat'])\n" > "$1/src/eater/setup.py"
}
# jetforge in project $1, inside the cgroup, on the fake host; output to $1/out.log.
jfc() { bash -c "echo \$\$ > $cg/cgroup.procs; cd $1; exec env JETFORGE_CACHE_DIR=$1/cache JETFORGE_HOST_ROOT=$host \
    $jf --recipes recipes --work-dir work --target host --no-progress \"\$@\"" bash "${@:2}" >"$1/out.log" 2>&1 || true; }
ooms() { grep -c "most likely out of memory" "$1/out.log" || true; }
plan_jobs() { (cd "$1" && JETFORGE_CACHE_DIR="$1/cache" JETFORGE_HOST_ROOT="$host" "$jf" --recipes recipes \
    --work-dir work --target host --json plan 2>/dev/null) \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["recipes"][0]["jobs"]["jobs"])'; }
# Seconds the compile step of the last build took (OOM-killed runs included), from the state.
step_secs() { python3 -c 'import json,sys; print(sum(t["wall_secs"] for t in json.load(open(sys.argv[1]))["timings"] if t["step"] == "step 1"))' \
    "$1/work/recipes-host/state/eater.json"; }

best=0; best_t=999999
for j in 1 2 3 4 5; do
  d="$tmp/fixed-$j"; project "$d" 1.0
  jfc "$d" build --python "$py" --system-site-packages --jobs "$j"
  t=$(step_secs "$d"); o=$(ooms "$d")
  echo "fixed --jobs $j: steps $(printf %.2f "$t") s, OOM kills $o"
  if [ "$o" = 0 ] && (( $(echo "$t < $best_t" | bc) )); then best=$j; best_t=$t; fi
done
echo "best fixed jobs: $best"
for case in "too-high 2.0" "too-low 0.5"; do
  set -- $case
  d="$tmp/$1"; project "$d" "$2"
  first_plan=$(plan_jobs "$d")
  jfc "$d" build --python "$py" --system-site-packages; o1=$(ooms "$d")
  next=$(plan_jobs "$d")
  jfc "$d" build --python "$py" --system-site-packages --force eater; o2=$(ooms "$d")
  ok=$(( next >= best - 1 && next <= best + 1 ))
  echo "$1 (mem_per_job_gib = $2): first plan $first_plan jobs (OOM kills $o1), next plan $next jobs" \
       "(OOM kills $o2); best fixed $best; within one: $([ $ok = 1 ] && echo yes || echo NO);" \
       "OOM-killed builds in all: $(( (o1 > 0) + (o2 > 0) )) (target <= 1)"
done
