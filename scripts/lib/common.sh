# Shared by the benchmark and GPU scripts (sourced, not run): the jetforge binary, timing,
# free ports, memory cgroups, and the carried files of the GPU machine scripts.

# The repository root.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

now() { date +%s.%N; }

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# jetforge_bin [release|debug]: prints the jetforge to measure: $JETFORGE_BIN (a binary already
# built, e.g. carried to a machine without cargo), else builds the profile (default release).
jetforge_bin() {
  if [ -n "${JETFORGE_BIN:-}" ]; then echo "$JETFORGE_BIN"; return; fi
  if [ "${1:-release}" = debug ]; then
    (cd "$root" && cargo build -q) >&2 && echo "$root/target/debug/jetforge"
  else
    (cd "$root" && cargo build -q --release) >&2 && echo "$root/target/release/jetforge"
  fi
}

# memory_cgroup NAME LIMIT: makes a cgroup v1 memory group NAME below this shell's, limited to
# LIMIT (memory and memory+swap), and prints its path; fails (status 1) where it cannot (not
# root, cgroup v2).
memory_cgroup() {
  local own cg
  own=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
  cg="/sys/fs/cgroup/memory$own/$1"
  mkdir "$cg" 2>/dev/null || return 1
  echo "$2" > "$cg/memory.limit_in_bytes"
  echo "$2" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
  echo "$cg"
}

# gpu_setup NAME [CARRY_DIR]: for the GPU machine scripts. Sets carry (CARRY_DIR, $E2E_DIR, else
# .device-carry/e2e), jf (bin/jetforge there, or $JETFORGE_BIN), mirror (bitsandbytes.git
# there, or $BNB_MIRROR), arch ($CUDA_ARCH, 9.0), py ($PYTHON, python3), work (a new temp dir),
# out ($OUT, else work), and copies all output to $out/NAME.log.
gpu_setup() {
  carry=${2:-${E2E_DIR:-.device-carry/e2e}}
  jf=$(realpath "${JETFORGE_BIN:-$carry/bin/jetforge}")
  mirror=$(realpath "${BNB_MIRROR:-$carry/bitsandbytes.git}")
  arch=${CUDA_ARCH:-9.0}
  py=${PYTHON:-python3}
  work=$(mktemp -d "/tmp/jetforge-$1.XXXXXX")
  out=${OUT:-$work}
  mkdir -p "$out"
  exec > >(tee -a "$out/$1.log") 2>&1
}

# calc EXPR: EXPR evaluated by Python, rounded to 3 places.
calc() { "${py:-python3}" -c "print(round($1, 3))"; }
