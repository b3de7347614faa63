#!/usr/bin/env bash
# The aarch64 kernel paths, proved without ARM hardware (issue 15): cross-compiles the C kernels and their C test driver
# (CKernels/test/driver.c: every kernel × every path the CPU runs × odd shapes × threads 1/2/3, int8 bit for bit, f32
# within the Swift tests' named tolerances) with Debian's aarch64 cross gcc, and runs it under qemu-user with three CPU
# models: cortex-a72 (NEON only: the `neon` path), cortex-a76 (+ dot product: `dotprod`) and max (+ i8mm: `i8mm`).
# The driver is built twice for aarch64: by gcc with OpenMP (libgomp from the cross packages: threads 1/2/3 really run
# in parallel) and by clang, the compiler SwiftPM uses on a Pi (its OpenMP needs LLVM's runtime, which the cross
# packages lack, so that build is single-threaded: the pragmas are ignored). Also builds and runs the driver natively
# (the x86 paths), so it cannot rot. Prints a line per path and CPU model; exits non-zero on any failure.
#   bash scripts/test-aarch64.sh        (installs qemu-user, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross via apt)
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c11 -O2 -ffp-contract=off -fopenmp -ICKernels/include -Wall -Werror -Wno-unknown-pragmas)
omp=${UNCLIP_OMP_INCLUDE:-/usr/lib/llvm-14/lib/clang/14.0.6/include}
omplib=${UNCLIP_OMP_LIB:-/usr/lib/llvm-14/lib}

status=0
run() {   # label, command...
    local label=$1; shift
    if ! "$@" > "$out/log" 2>&1; then status=1; fi
    sed "s/^/$label: /" "$out/log"
}
clang "${flags[@]}" -I"$omp" CKernels/src/*.c CKernels/test/driver.c -L"$omplib" -lomp -lm -Wl,-rpath,"$omplib" -o "$out/driver-native"
run "native $(uname -m)" "$out/driver-native"
aarch64-linux-gnu-gcc "${flags[@]}" CKernels/src/*.c CKernels/test/driver.c -lm -o "$out/driver-aarch64"
clang --target=aarch64-linux-gnu "${flags[@]/-fopenmp/-fopenmp=libgomp}" -Wno-unused-variable -O3 \
    CKernels/src/*.c CKernels/test/driver.c -lm -o "$out/driver-aarch64-clang"
for cpu in cortex-a72 cortex-a76 max; do
    run "qemu -cpu $cpu, gcc" qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$out/driver-aarch64"
    run "qemu -cpu $cpu, clang" qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$out/driver-aarch64-clang"
done
# each CPU model must offer the path it stands for (a qemu that lost a feature would otherwise pass by running less)
for want in "cortex-a72 neon" "cortex-a76 dotprod" "max i8mm"; do
    set -- $want
    best=$(qemu-aarch64 -cpu "$1" -L /usr/aarch64-linux-gnu "$out/driver-aarch64" --best | sed -n 's/^best path on this CPU: //p')
    if [ "$best" != "$2" ]; then echo "qemu -cpu $1: best path is '$best', expected $2"; status=1; fi
done
[ "$status" -eq 0 ] && echo "aarch64 kernel paths passed" || echo "aarch64 kernel paths FAILED"
exit "$status"
