#!/usr/bin/env bash
# Cross-compiles the C kernels for aarch64 (scalar paths) to check they stay portable.
# Needs Debian's libc6-dev-arm64-cross (apt-get install libc6-dev-arm64-cross) and the Swift toolchain's clang.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
omp=${UNCLIP_OMP_INCLUDE:-/usr/lib/llvm-14/lib/clang/14.0.6/include}
for f in CKernels/src/*.c; do
    clang --target=aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include \
        -std=c11 -O2 -ffp-contract=off -fopenmp -I"$omp" -ICKernels/include -Wall -Werror -Wno-unknown-pragmas \
        -c "$f" -o "$out/$(basename "$f").o"
done
echo "aarch64: $(ls "$out" | wc -l) kernel files compiled"
