#!/usr/bin/env bash
# Installs what infini needs on Debian 12 (when missing) and builds it. Idempotent.
# Usage: scripts/setup.sh
#   INFINI_TORCH=debian (default)  Debian's LibTorch 1.13 (CPU), build folder build/
#   INFINI_TORCH=pip               PyPI's torch 2.x (the CUDA build; runs on CPU without a GPU), in a
#                                  virtual environment inside the build folder, build folder build-torch2/
#   INFINI_TORCH_VERSION=2.15.0    the torch version pip installs (the one tested)
#   CMAKE_PREFIX_PATH=/opt/libtorch  any other LibTorch (an archive from the PyTorch site): it is found
#                                  before Debian's; use its own BUILD_DIR
#   BUILD_DIR, BUILD_TYPE=Release, JOBS=nproc, INFINI_UNITY_BUILD=ON
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "==> $*"; }
die() { echo "setup.sh: FAILED at step '$1': $2" >&2; exit 1; }

PACKAGES=(
  cmake g++ make pkg-config ccache git
  libtorch-dev libopenblas0-pthread libgloo-dev
  libsentencepiece-dev sentencepiece
  libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
  python3-torch python3-numpy python3-matplotlib python3-venv
  bible-kjv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || die "install packages" "apt-get not found (Debian 12 expected); install: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/tmp/infini-apt.log 2>&1 || die "apt-get update" "no network or no package index (see /tmp/infini-apt.log)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/infini-apt.log 2>&1 \
    || die "apt-get install" "could not install ${missing[*]} (see /tmp/infini-apt.log)"
else
  step "Debian packages: all present"
fi

. scripts/flavour.sh
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
UNITY=${INFINI_UNITY_BUILD:-ON}  # unity batches: a fresh build in about a third of the time
mkdir -p "$BUILD_DIR"

PREFIX_ARGS=()
if [ "$FLAVOUR" = pip ]; then
  TORCH_VERSION=${INFINI_TORCH_VERSION:-2.15.0}
  VENV="$BUILD_DIR/venv"
  if [ ! -x "$VENV/bin/python" ]; then
    step "creating the virtual environment $VENV"
    /usr/bin/python3 -m venv "$VENV" || die "python venv" "could not create $VENV (is python3-venv installed?)"
  fi
  have=$("$VENV/bin/python" -c 'import numpy, torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
  if [ "$have" != "$TORCH_VERSION" ]; then
    step "installing torch==$TORCH_VERSION from PyPI into $VENV (about 5 GB with its CUDA libraries; pip caches it)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" numpy \
      || die "pip install" "could not install torch==$TORCH_VERSION from PyPI (offline? another version: INFINI_TORCH_VERSION)"
  else
    step "torch $have: present in $VENV"
  fi
  # The tests' oracles: Hugging Face transformers for the import/export (tests/reference/hf_oracle.py)
  # and TensorBoard's own reader for the event files (tests/reference/tb_read.py); the versions tested.
  ORACLE_PINS=(transformers==5.24.0 safetensors==0.8.0 tensorboard==2.21.0)
  have_oracle=$("$VENV/bin/python" -c 'import transformers, safetensors, tensorboard; print(f"transformers=={transformers.__version__} safetensors=={safetensors.__version__} tensorboard=={tensorboard.__version__}")' 2>/dev/null || true)
  if [ "$have_oracle" != "${ORACLE_PINS[*]}" ]; then
    step "installing ${ORACLE_PINS[*]} from PyPI into $VENV (the tests' oracles)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${ORACLE_PINS[@]}" \
      || die "pip install" "could not install ${ORACLE_PINS[*]} from PyPI (offline?)"
  else
    step "${ORACLE_PINS[*]}: present in $VENV"
  fi
  TORCH_CMAKE=$("$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) \
    || die "find LibTorch" "torch in $VENV does not import"
  ABI=$("$VENV/bin/python" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')
  [ "$ABI" = 1 ] || die "check the C++ ABI" "torch $TORCH_VERSION is built with the old C++ ABI; Debian's libraries need the new one"
  # CMAKE_PREFIX_PATH is read by cmake itself; this one goes first.
  PREFIX_ARGS=(-DCMAKE_PREFIX_PATH="$TORCH_CMAKE${CMAKE_PREFIX_PATH:+;$CMAKE_PREFIX_PATH}")
fi

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
step "configuring ($BUILD_TYPE, LibTorch: $FLAVOUR) into $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DINFINI_UNITY_BUILD="$UNITY" "${PREFIX_ARGS[@]}" \
  >"$BUILD_DIR.cmake.log" 2>&1 || { cat "$BUILD_DIR.cmake.log" >&2; die "cmake configure" "see the messages above"; }
step "building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS" || die "build" "the compiler reported errors above"
step "built $BUILD_DIR/infini: $("$BUILD_DIR/infini" --version)"
