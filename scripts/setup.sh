#!/usr/bin/env bash
# Installs what infini needs on Debian 12 (when missing) and builds it into build/. Idempotent.
# Usage: scripts/setup.sh   (env: BUILD_DIR=build, BUILD_TYPE=Release, JOBS=nproc, INFINI_UNITY_BUILD=ON)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "==> $*"; }
die() { echo "setup.sh: FAILED at step '$1': $2" >&2; exit 1; }

PACKAGES=(
  cmake g++ make pkg-config ccache git
  libtorch-dev libopenblas0-pthread libgloo-dev
  libsentencepiece-dev sentencepiece
  libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
  python3-torch python3-numpy python3-matplotlib
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

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
UNITY=${INFINI_UNITY_BUILD:-ON}  # unity batches: a fresh build in about a third of the time
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
step "configuring ($BUILD_TYPE) into $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DINFINI_UNITY_BUILD="$UNITY" >"$BUILD_DIR.cmake.log" 2>&1 \
  || { cat "$BUILD_DIR.cmake.log" >&2; die "cmake configure" "see the messages above"; }
step "building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS" || die "build" "the compiler reported errors above"
step "built $BUILD_DIR/infini"
