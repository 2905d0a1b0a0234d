#!/usr/bin/env bash
# End to end on a GPU machine without network (the device machine: x86-64, CUDA at
# /usr/local/cuda, Python with torch): doctor, build bitsandbytes from a local mirror with the
# machine's torch, install into a venv, verify on the GPU, and P7 (the same build by hand, from
# `jetforge env` and the plan's steps, vs through jetforge).
#
# usage: scripts/gpu-e2e.sh [CARRY_DIR]        run from the repository root
#   CARRY_DIR (or $E2E_DIR), default .device-carry/e2e, holds:
#     bin/jetforge        the binary (cargo build --release; cp target/release/jetforge …)
#     bitsandbytes.git    the bare mirror (scripts/make-bnb-mirror.sh)
#   env: JETFORGE_BIN, BNB_MIRROR override those paths; CUDA_ARCH (default 9.0);
#        PYTHON (default python3); OUT: where logs and JSON reports go (default: the temp dir).
set -euo pipefail

source "$(dirname "$0")/lib/common.sh"
gpu_setup gpu-e2e "${1:-}"

section() { printf '\n========== %s ==========\n' "$*"; }

wd=$work/wd
mkdir -p "$wd"
cat > "$wd/jetforge.toml" <<TOML
[network]
offline = true

[mirrors]
"https://github.com/bitsandbytes-foundation/bitsandbytes" = "file://$mirror"
TOML
export JETFORGE_CACHE_DIR=$work/cache
jetforge=("$jf" --work-dir "$wd" --target host --cuda-arch "$arch" --offline)

section "machine"
echo "work dir: $work"
nvidia-smi -L || true
"$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count())'
/usr/local/cuda/bin/nvcc --version | tail -2 || true

section "doctor"
rc=0
"${jetforge[@]}" doctor bitsandbytes || rc=$?
"${jetforge[@]}" --json doctor bitsandbytes > "$out/doctor.json" || true
echo "doctor exit status: $rc"

section "build (through jetforge, cold: clone from the mirror, venv, build, verify)"
t0=$(now)
"${jetforge[@]}" --no-progress build bitsandbytes --system-site-packages --python "$py" --wheelhouse "$work/wheelhouse"
t1=$(now)
echo "build took $(calc "$t1 - $t0") s"
ls -l "$work/wheelhouse"

section "install"
"${jetforge[@]}" install bitsandbytes --venv "$work/venv" --system-site-packages --python "$py" --wheelhouse "$work/wheelhouse"

section "verify (on the GPU)"
"${jetforge[@]}" verify bitsandbytes --venv "$work/venv"
"${jetforge[@]}" --json verify bitsandbytes --venv "$work/venv" > "$out/verify.json"

section "P7: the same build by hand vs through jetforge"
"${jetforge[@]}" --json plan bitsandbytes > "$work/plan.json"
hand=$work/hand
git clone --quiet "$mirror" "$hand/src"
git -C "$hand/src" checkout --quiet "$(sed -n 's/^commit = "\(.*\)"/\1/p' recipes/jp6-vllm-0.12/bitsandbytes.toml)"
mkdir -p "$hand/out"
# The plan's filled steps, pointed at the hand checkout and output dir.
"$py" - "$work/plan.json" "$hand" > "$hand/steps.sh" <<'PY'
import json, shlex, sys
plan, hand = json.load(open(sys.argv[1])), sys.argv[2]
r = next(r for r in plan["recipes"] if r["name"] == "bitsandbytes")
src = r["source_dir"]
def fix(s):
    return s.replace(src, hand + "/src").replace(src.replace("/src/", "/out/"), hand + "/out")
print("set -euo pipefail")
for step in r["steps"]:
    print("cd " + shlex.quote(fix(step.get("cwd", src))))
    if "argv" in step:
        print(shlex.join(fix(a) for a in step["argv"]))
    else:
        print(fix(step["script"]))
PY
echo "--- steps run by hand:"; cat "$hand/steps.sh"
src_dir=$("$py" -c 'import json,sys; print(next(r for r in json.load(open(sys.argv[1]))["recipes"] if r["name"]=="bitsandbytes")["source_dir"])' "$work/plan.json")
logs=$(dirname "$src_dir")/../logs/bitsandbytes
# by_hand: the plan's steps in a fresh checkout, under `eval "$(jetforge env …)"`.
by_hand() {
  rm -rf "$hand/src/build" "$hand/out"/*
  local t0 t1; t0=$(now)
  (eval "$("${jetforge[@]}" env bitsandbytes)" && bash "$hand/steps.sh") >"$hand/log" 2>&1 \
    || { echo "the build by hand failed:"; tail -30 "$hand/log"; exit 1; }
  t1=$(now); took=$(calc "$t1 - $t0")
}
# The same through jetforge from a clean build dir; the step logs are made anew, so the first
# one's birth and the last one's mtime bound the steps.
through_jetforge() {
  rm -rf "$src_dir/build" "$logs"
  local t0 t1 first last; t0=$(now)
  "${jetforge[@]}" --no-progress build bitsandbytes --force bitsandbytes --system-site-packages \
    --python "$py" --wheelhouse "$work/wheelhouse" >"$work/forced.log" 2>&1 \
    || { echo "the build through jetforge failed:"; tail -30 "$work/forced.log"; exit 1; }
  t1=$(now); took=$(calc "$t1 - $t0")
  first=$(ls "$logs"/[0-9][0-9]-*.log | head -1); last=$(ls "$logs"/[0-9][0-9]-*.log | tail -1)
  steps=$(calc "$(stat -c %.9Y "$last") - $(stat -c %.9W "$first")")
}
# Alternating, so that neither side gets a warmer machine: hand, jetforge, hand, jetforge.
by_hand; hand_1=$took; through_jetforge; jf_1=$took; steps_1=$steps
by_hand; hand_2=$took; through_jetforge; jf_2=$took; steps_2=$steps
ls -l "$hand/out"
by_hand=$(calc "($hand_1 + $hand_2) / 2")
through=$(calc "($jf_1 + $jf_2) / 2")
steps_only=$(calc "($steps_1 + $steps_2) / 2")
echo "by hand: $hand_1 s, $hand_2 s; through jetforge: $jf_1 s, $jf_2 s (steps $steps_1 s, $steps_2 s)"

section "summary"
"$py" - "$out/doctor.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
print(f"doctor: {s['blockers']} blocker(s), {s['warnings']} warning(s) {s['blocking']}")
for sec in d["sections"]:
    for c in sec["checks"]:
        if sec["title"] in ("CUDA", "Python", "GPU") or c["level"] in ("warn", "blocker"):
            print(f"  {c['level']:<7} {sec['title']}/{c['name']}: {c['detail']}")
PY
echo "verify: $("$py" -c 'import json,sys; print([(r["package"], r["result"]) for r in json.load(open(sys.argv[1]))["results"]])' "$out/verify.json")"
echo "P7: by hand ${by_hand} s, through jetforge ${through} s (steps + wheel checks + install into the verify venv + GPU verify), ratio $(calc "$through / $by_hand")"
echo "P7 (steps only): by hand ${by_hand} s, jetforge's steps ${steps_only} s, ratio $(calc "$steps_only / $by_hand")"
