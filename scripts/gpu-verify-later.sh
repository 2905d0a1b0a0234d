#!/usr/bin/env bash
# Deferred verification end to end on a GPU machine without network, with the real program and
# a real CUDA project: build bitsandbytes (the set's recipe, from a local mirror, offline),
# `publish --dir` the wheelhouse and serve it over http on 127.0.0.1, then as "the device" (its
# own work dir, no config): `verify --nccl` in a venv, `verify --find-links URL --nccl` (installs
# from the served tree, runs the GPU snippet and the one-GPU NCCL check, records the result),
# `publish --verified --dir` (the attestation next to the tree's manifest), and `install
# --find-links` from the tree, which must not warn.
#
# usage: scripts/gpu-verify-later.sh [CARRY_DIR]      run from the repository root
#   CARRY_DIR (or $E2E_DIR), default .device-carry/e2e: bin/jetforge and bitsandbytes.git, as for
#   scripts/gpu-e2e.sh. OUT: where the log and verify JSON go (default: the temp dir).
set -uo pipefail
source "$(dirname "$0")/lib/common.sh"
gpu_setup gpu-verify-later "${1:-}"
w=$work
printf '[network]\noffline = true\n[mirrors]\n"https://github.com/bitsandbytes-foundation/bitsandbytes" = "file://%s"\n' "$mirror" > $w/jetforge.toml
export JETFORGE_CONFIG=$w/jetforge.toml JETFORGE_CACHE_DIR=$w/cache
j=("$jf" --work-dir $w/wd --target host --cuda-arch "$arch" --offline --no-progress)
echo "== build"; "${j[@]}" build bitsandbytes --system-site-packages --python "$py" --wheelhouse $w/wh | tail -3
"$py" -c 'import json,sys; print([(e["package"], e.get("verify")) for e in json.load(open(sys.argv[1]))["wheels"]])' $w/wh/manifest.json
echo "== publish --dir"; "${j[@]}" publish --dir $w/tree --wheelhouse $w/wh | tail -2
(cd $w/tree && exec python3 -m http.server 18765 --bind 127.0.0.1 >/dev/null 2>&1) & srv=$!; sleep 1; U=http://127.0.0.1:18765/
echo "== the device's venv (made by install: it sees the machine's torch)"
"${j[@]}" install bitsandbytes --venv $w/venv --system-site-packages --python "$py" --wheelhouse $w/wh | tail -2
j2=(env JETFORGE_CONFIG= "$jf" --work-dir $w/dev --target host --cuda-arch "$arch" --no-progress)
echo "== plain verify --nccl in the venv"; "${j[@]}" verify bitsandbytes --venv $w/venv --nccl; echo "rc=$?"
echo "== verify --find-links --nccl"; "${j2[@]}" verify bitsandbytes --find-links $U --venv $w/venv --nccl; echo "rc=$?"
"${j2[@]}" --json verify bitsandbytes --find-links $U --venv $w/venv --nccl > $out/verify.json; echo "rc=$?"
find $w/dev -name verify-results.json -exec cat {} \;
echo "== publish --verified --dir"; "${j2[@]}" publish --verified --dir $w/tree; echo "rc=$?"
cat $w/tree/jetforge-verified.json
echo "== install from the tree (no warning expected)"
"${j2[@]}" install bitsandbytes --venv $w/venv2 --find-links $U --system-site-packages --python "$py"; echo "rc=$?"
kill $srv
