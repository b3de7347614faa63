#!/usr/bin/env bash
# The test suite under a sanitizer, C kernels included (SwiftPM passes -fsanitize to the C targets too), on every
# kernel path this host has (the kernel tests loop over Runtime.supportedPaths).
#   scripts/sanitize.sh address     AddressSanitizer (out-of-bounds, use-after-free, leaks are not checked: Swift's
#                                   runtime keeps caches alive to exit)
#   scripts/sanitize.sh undefined   UndefinedBehaviorSanitizer on the C code (signed overflow, misaligned loads, bad
#                                   shifts, out-of-bounds array indexing…) in trap mode: the first UB stops the test
#                                   with SIGILL. Swift code needs none (swiftc has no -sanitize=undefined on Linux:
#                                   overflow and bounds are checked by the language).
# Own build folder per sanitizer (.build-asan, .build-ubsan): the normal build is untouched. About 10–20 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-address}"
case "$kind" in
    address) dir=.build-asan ;;
    undefined) dir=.build-ubsan ;;
    *) echo "usage: scripts/sanitize.sh address|undefined" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
if [ "$kind" = address ]; then
    flags=(--sanitize=address)
else
    flags=(-Xcc -fsanitize=undefined -Xcc -fsanitize-trap=all -Xcc -fno-sanitize-recover=all)
fi
swift build --build-tests --build-path "$dir" "${flags[@]}"
swift test --skip-build --build-path "$dir" "${flags[@]}" --disable-swift-testing "${@:2}"
