#!/usr/bin/env bash
# Installs the system packages the engine builds against (Debian; run as root). Skips apt when all are present.
#   libopenblas-dev  OpenBLAS, the benchmark's sgemm baseline
#   libomp-dev       LLVM's OpenMP runtime and omp.h (kernel threads)
#   libpng-dev       PNG reading and writing
#   zlib1g-dev       zlib (the animated-PNG writer compresses its frames)
set -euo pipefail
pkgs=(libopenblas-dev libomp-dev libpng-dev zlib1g-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The standard GGUF reader (PyPI `gguf`, ggml's own gguf-py) in its own small venv: the tests check that our
# files dump cleanly with it.
here="$(cd "$(dirname "$0")/.." && pwd)"
gguf_venv="$here/weights-tools/.venv-gguf"
if [ ! -x "$gguf_venv/bin/gguf-dump" ]; then
    python3 -m venv "$gguf_venv"
    "$gguf_venv/bin/pip" install -q gguf==0.19.0 numpy==2.4.6 pyyaml==6.0.3 tqdm==4.67.1 requests==2.34.2
fi
# Package.swift looks for omp.h under LLVM 14's directory (Debian bookworm's libomp-dev); say so if it moved.
if [ -z "${UNCLIP_OMP_INCLUDE:-}" ] && [ ! -f /usr/lib/llvm-14/lib/clang/14.0.6/include/omp.h ]; then
    echo "install-deps: omp.h is not at /usr/lib/llvm-14/lib/clang/14.0.6/include;" \
         "set UNCLIP_OMP_INCLUDE and UNCLIP_OMP_LIB to the directories from 'dpkg -L libomp-dev'" >&2
    exit 1
fi
