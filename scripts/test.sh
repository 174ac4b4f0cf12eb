#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), then runs the whole test suite with ctest.
# Its exit code is the tests'. Usage: scripts/test.sh [extra ctest args, e.g. -R Config]
# INFINI_TORCH=pip tests against PyPI's torch 2.x in build-torch2/ (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/flavour.sh
# PyPI's Linux torch is the CUDA build: a test fails if this one is not.
[ "$FLAVOUR" = pip ] && export INFINI_EXPECT_CUDA_BUILD=${INFINI_EXPECT_CUDA_BUILD:-1}
# The Python the Hugging Face tests compare with (torch, transformers, safetensors): this flavour's
# virtual environment, else the pip flavour's (build-torch2/venv); without one those tests skip,
# or fail where INFINI_REQUIRE_ORACLE=1 (.ci/run).
if [ -z "${INFINI_ORACLE_PYTHON:-}" ]; then
  for py in "$PWD/$BUILD_DIR/venv/bin/python" "$PWD/build-torch2/venv/bin/python"; do
    if [ -x "$py" ] && "$py" -c 'import torch, transformers, safetensors' >/dev/null 2>&1; then
      export INFINI_ORACLE_PYTHON="$py"
      break
    fi
  done
fi
echo "==> oracle Python (Hugging Face and TensorBoard tests): ${INFINI_ORACLE_PYTHON:-none (the Hf* and TensorBoard reader tests skip)}"
echo "==> running tests ($("$BUILD_DIR/infini" --version))"
mkdir -p "$BUILD_DIR/test_tmp"
cd "$BUILD_DIR"
# Two jobs: each test already uses LibTorch's threads, and the machine has 2 cores.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --output-on-failure -j "${CTEST_JOBS:-2}" --timeout 600 "$@"
