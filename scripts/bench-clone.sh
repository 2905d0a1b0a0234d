#!/usr/bin/env bash
# Benchmarks the git source cache: builds a fixture superproject with a few thousand commits and
# two submodules (fast-import, no network), then times `jetforge prepare` with a cold cache (mirror
# fetch + checkout) against `jetforge prepare` into a fresh work dir from the warm mirror.
#
# usage: scripts/bench-clone.sh [COMMITS]   (default 3000)
set -euo pipefail
commits=${1:-3000}
source "$(dirname "$0")/lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# make_repo NAME COMMITS FILES [GITLINK_PATH=SHA...]: a bare repo at $tmp/remotes/NAME.git whose
# history touches one of FILES files per commit; gitlinks go into the last commit.
make_repo() {
  local name=$1 n=$2 files=$3; shift 3
  local bare=$tmp/remotes/$name.git
  git init -q --bare "$bare"
  python3 - "$n" "$files" "$@" <<'PY' | git --git-dir "$bare" fast-import --quiet
import sys
n, files, links = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
out = sys.stdout.buffer
def data(b):
    out.write(b"data %d\n" % len(b) + b + b"\n")
for i in range(1, n + 1):
    out.write(b"commit refs/heads/main\ncommitter bench <b@b> %d +0000\n" % (1_600_000_000 + i))
    data(b"commit %d" % i)
    if i == 1:
        for f in range(files):
            out.write(b"M 100644 inline src/f%d.c\n" % f)
            data(b"".join(b"int f%d_%d(void) { return %d; }\n" % (f, k, k) for k in range(40)))
    else:
        f = i % files
        out.write(b"M 100644 inline src/f%d.c\n" % f)
        data(b"".join(b"int f%d_%d(void) { return %d; }\n" % (f, k, k * i) for k in range(40)))
    if i == n and links:
        gm = b""
        for link in links:
            path, sha = link.split("=")
            out.write(b"M 160000 %s %s\n" % (sha.encode(), path.encode()))
            gm += b'[submodule "%s"]\n\tpath = %s\n\turl = ../%s.git\n' % ((path.encode(),) * 2 + (path.split("/")[-1].encode(),))
        out.write(b"M 100644 inline .gitmodules\n")
        data(gm)
PY
  git --git-dir "$bare" rev-parse refs/heads/main
}

mkdir -p "$tmp/remotes"
sub1=$(make_repo sub1 $((commits / 4)) 100)
sub2=$(make_repo sub2 $((commits / 4)) 100)
top=$(make_repo super "$commits" 400 "third_party/sub1=$sub1" "third_party/sub2=$sub2")

cd "$root"
jf=$(jetforge_bin release)
mkdir -p "$tmp/recipes"
cat > "$tmp/recipes/super.toml" <<EOF
[package]
name = "super"
version = "1.0"
[source]
git = "file://$tmp/remotes/super.git"
commit = "$top"
submodules = true
[output]
kind = "source"
EOF
export JETFORGE_CACHE_DIR="$tmp/cache" JETFORGE_CONFIG="$tmp/none.toml"
t0=$(now); "$jf" --recipes "$tmp/recipes" --work-dir "$tmp/cold" --no-progress prepare >/dev/null 2>&1; t1=$(now)
"$jf" --recipes "$tmp/recipes" --work-dir "$tmp/warm" --no-progress prepare >/dev/null 2>&1; t2=$(now)
python3 - "$t0" "$t1" "$t2" "$commits" <<'PY'
import sys
t0, t1, t2, n = map(float, sys.argv[1:])
cold, warm = t1 - t0, t2 - t1
print(f"fixture: {int(n)} commits, 2 submodules of {int(n) // 4} commits")
print(f"cold: mirror fetch + checkout        {cold:7.3f} s")
print(f"warm: checkout from the warm mirror  {warm:7.3f} s")
print(f"ratio warm/cold: {warm / cold:.3f}  (target <= 0.1)")
PY
