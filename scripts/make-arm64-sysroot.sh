#!/usr/bin/env bash
# Builds a target Python sysroot for cross-building aarch64 wheels on an x86-64 Debian 12 host:
# Debian's arm64 CPython 3.11 (headers, sysconfigdata, interpreter, stdlib), glibc with its
# development files (for `--sysroot` links) and the few libraries the interpreter needs to start
# under qemu-aarch64. Packages are fetched with `apt-get download` and unpacked with `dpkg -x`:
# nothing arm64 is ever installed on the host.
#
# usage: scripts/make-arm64-sysroot.sh DIR
#
# Idempotent: a DIR holding a complete sysroot (its `.jetforge-sysroot` stamp names the same
# package list) is left alone. Needs root for `dpkg --add-architecture arm64` and `apt-get
# update` the first time (done only when arm64 is not yet a foreign architecture).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
python=3.11

# libmpdec3 is absent from bookworm (3.11 bundles libmpdec), so it is not listed.
packages=(
    "libpython$python-dev" "libpython$python" "libpython$python-stdlib"
    "libpython$python-minimal" "python$python" "python$python-minimal"
    libc6 libc6-dev linux-libc-dev libcrypt1 libcrypt-dev libgcc-s1
    zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1
)
stamp="$dir/.jetforge-sysroot"
want="python$python: ${packages[*]}"

now() { echo "${EPOCHREALTIME/[.,]/}"; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", (b - a) / 1e6 }'; }

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dir/usr/bin/python$python" ]]; then
    echo "sysroot $dir is up to date (python$python, ${#packages[@]} packages); nothing to do"
    exit 0
fi

if [[ -d "$dir" && ! -f "$stamp" && -n "$(ls -A "$dir")" ]]; then
    echo "error: $dir is not empty and was not made by this script; refusing to replace it" >&2
    exit 1
fi

start=$(now)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "adding the arm64 architecture to dpkg and updating the package lists"
    t=$(now)
    dpkg --add-architecture arm64
    apt-get update -qq
    echo "  apt-get update took $(took "$t")"
elif ! apt-cache show "python$python:arm64" >/dev/null 2>&1; then
    echo "arm64 package lists are missing; updating them"
    t=$(now)
    apt-get update -qq
    echo "  apt-get update took $(took "$t")"
fi

debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
chmod 777 "$debs" # apt-get download writes as the _apt user
echo "downloading ${#packages[@]} arm64 packages"
t=$(now)
(cd "$debs" && apt-get download -qq "${packages[@]/%/:arm64}")
echo "  download took $(took "$t") ($(du -sh "$debs" | cut -f1))"

echo "unpacking into $dir"
t=$(now)
rm -rf "$dir"
mkdir -p "$dir"
for deb in "$debs"/*.deb; do
    dpkg -x "$deb" "$dir"
done
# Debian 12 is merged-/usr: the loader and libc live under usr/lib, and programs (and the
# linker scripts in libc6-dev) name them through /lib.
for d in lib lib64 bin sbin; do
    if [[ ! -e "$dir/$d" && -d "$dir/usr/$d" ]]; then
        ln -s "usr/$d" "$dir/$d"
    fi
done
echo "  unpacking took $(took "$t") ($(du -sh "$dir" | cut -f1))"

for need in "usr/bin/python$python" "usr/include/python$python/Python.h" \
    "usr/lib/python$python/_sysconfigdata__linux_aarch64-linux-gnu.py" \
    lib/ld-linux-aarch64.so.1; do
    if [[ ! -e "$dir/$need" ]]; then
        echo "error: $dir/$need is missing after unpacking" >&2
        exit 1
    fi
done
echo "$want" >"$stamp"
echo "sysroot ready: $dir (python$python for aarch64) in $(took "$start")"
