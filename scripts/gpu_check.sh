#!/usr/bin/env bash
# The GPU check: builds infini against the LibTorch of a machine with an NVIDIA GPU and PyTorch 2.x
# (and no Debian packages), runs the test suite on the GPU (INFINI_TEST_DEVICE=cuda), and prints,
# measured in the same run, the GPU's bf16 matmul rate, infini's training tokens/s and FLOP/s on a
# GPU-sized model (configs/bench/gpu.yaml), and their ratio (MFU). About 5-8 minutes.
#
#   scripts/gpu_check.sh --fetch   on a Debian 12 machine with its package index: downloads the
#                                  libraries infini builds with (yaml-cpp, spdlog, fmt, sentencepiece,
#                                  CLI11, nlohmann-json, GoogleTest, zlib) as .deb files into
#                                  gpu-deps/debs/; copy the checkout with gpu-deps/ to the GPU machine
#   scripts/gpu_check.sh           on the GPU machine: unpacks them into gpu-deps/prefix (dpkg -x, or
#                                  Python where there is no dpkg; never into /), builds build-gpu/, tests,
#                                  measures. Env: PYTHON (the python3 that has torch), JOBS, STEPS,
#                                  BENCH_BATCH (2), BENCH_SEQ (8192), SKIP_TESTS=1
#   scripts/gpu_check.sh --cpu     the same steps without a GPU (tests on CPU, a small bench shape):
#                                  checks the script itself on a CPU machine
# Not a benchmark of CPUs, and not part of CI (CI has no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEPS="$ROOT/gpu-deps"
step() { echo "==> $*"; }
die() { echo "gpu_check.sh: $*" >&2; exit 1; }

# Debian 12 packages: headers, CMake configs and shared libraries of what infini links.
DEBS=(libgloo-dev libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libsentencepiece-dev
  libsentencepiece0 libcli11-dev nlohmann-json3-dev libgtest-dev zlib1g-dev)

if [ "${1:-}" = "--fetch" ]; then
  command -v apt-get >/dev/null || die "--fetch needs apt-get (a Debian 12 machine)"
  mkdir -p "$DEPS/debs"
  step "downloading ${#DEBS[@]} Debian packages into $DEPS/debs"
  (cd "$DEPS/debs" && apt-get download "${DEBS[@]}") >"$DEPS/fetch.log" 2>&1 \
    || die "apt-get download failed (offline, or run apt-get update first); see $DEPS/fetch.log"
  ls -1 "$DEPS/debs"
  echo "copy the checkout (with gpu-deps/) to the GPU machine and run scripts/gpu_check.sh there"
  exit 0
fi

MODE=gpu
[ "${1:-}" = "--cpu" ] && MODE=cpu
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
STEPS=${STEPS:-5}
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }

step "checking the machine"
"$PY" -c 'import torch' 2>/dev/null || die "$PY has no torch (set PYTHON to the python3 that has PyTorch 2.x)"
"$PY" - "$MODE" <<'PY' || die "torch check failed (above)"
import sys, torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, C++11 ABI {torch.compiled_with_cxx11_abi()}")
if not torch.compiled_with_cxx11_abi():
    sys.exit("this torch uses the old C++ ABI; Debian's libraries need the new one")
if sys.argv[1] == "gpu":
    if not torch.cuda.is_available():
        sys.exit("no GPU visible to torch (use --cpu to check the script without one)")
    print("GPU:", torch.cuda.get_device_name(0))
PY
command -v c++ >/dev/null || command -v g++ >/dev/null || die "no C++ compiler (g++) on this machine"
command -v cmake >/dev/null || die "no cmake on this machine (pip install cmake)"

step "unpacking the Debian packages into $DEPS/prefix"
ls "$DEPS"/debs/*.deb >/dev/null 2>&1 || die "no .deb files in $DEPS/debs: run scripts/gpu_check.sh --fetch on a Debian 12 machine first"
for p in "${DEBS[@]}"; do
  ls "$DEPS"/debs/"${p}"_*.deb >/dev/null 2>&1 || die "$DEPS/debs has no ${p}_*.deb (run --fetch again)"
done
rm -rf "$DEPS/prefix"
mkdir -p "$DEPS/prefix"
for deb in "$DEPS"/debs/*.deb; do
  if command -v dpkg >/dev/null; then
    dpkg -x "$deb" "$DEPS/prefix" || die "dpkg -x $deb failed"
  else
    # A .deb is an ar archive holding data.tar.{xz,zst,gz}: unpack that member only.
    "$PY" - "$deb" "$DEPS/prefix" <<'PY' || die "cannot unpack $deb"
import io, sys, tarfile
deb, dest = sys.argv[1], sys.argv[2]
data = open(deb, "rb").read()
if data[:8] != b"!<arch>\n":
    sys.exit(f"{deb}: not an ar archive")
at = 8
while at + 60 <= len(data):
    name = data[at:at + 16].decode().strip().rstrip("/")
    size = int(data[at + 48:at + 58].decode().strip())
    body = data[at + 60:at + 60 + size]
    if name.startswith("data.tar"):
        if name.endswith(".zst"):
            sys.exit(f"{deb}: {name} is zstd-compressed; install dpkg or zstd")
        archive = tarfile.open(fileobj=io.BytesIO(body))
        try:
            archive.extractall(dest, filter="tar")
        except TypeError:  # Python before 3.11.4 has no extraction filters
            archive.extractall(dest)
        break
    at += 60 + size + (size & 1)
else:
    sys.exit(f"{deb}: no data.tar member")
PY
  fi
done
# Debian's CMake configs locate themselves relative to their own folder, so they work from here;
# sentencepiece (no CMake config) is found as files under the prefix, not through pkg-config.
PREFIX="$DEPS/prefix/usr"

BUILD=build-gpu
TORCH_CMAKE=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
GEN=()  # ninja where there is one, for a new build folder (an existing one keeps its generator)
[ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null && GEN=(-G Ninja)
step "configuring $BUILD/ against $TORCH_CMAKE ($(elapsed))"
cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DINFINI_UNITY_BUILD=ON \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$PREFIX" -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=TRUE >"$BUILD.cmake.log" 2>&1 || { tail -40 "$BUILD.cmake.log" >&2; die "cmake configure failed (log: $BUILD.cmake.log)"; }
step "building with $JOBS jobs ($(elapsed))"
cmake --build "$BUILD" -j "$JOBS" >"$BUILD.build.log" 2>&1 \
  || { grep -E "error|Error" "$BUILD.build.log" | head -30 >&2; die "build failed (log: $BUILD.build.log)"; }
"$BUILD/infini" --version

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  DEVICE=cuda
  [ "$MODE" = cpu ] && DEVICE=cpu
  step "test suite with INFINI_TEST_DEVICE=$DEVICE ($(elapsed))"
  mkdir -p "$BUILD/test_tmp"
  (cd "$BUILD" && INFINI_TEST_DEVICE=$DEVICE OMP_NUM_THREADS=1 ctest -j "$JOBS" --timeout 300 --output-on-failure \
    >"$ROOT/$BUILD.ctest.log" 2>&1) || { grep -E "Failed|\*\*\*|Error" "$BUILD.ctest.log" | head -30; tail -3 "$BUILD.ctest.log"; die "tests failed (log: $BUILD.ctest.log)"; }
  grep -E "tests passed|\(Skipped\)" "$BUILD.ctest.log" || true
fi

step "bf16 matmul rate of this device, through torch ($(elapsed))"
PEAK=$("$PY" - "$MODE" <<'PY'
import sys, time, torch
gpu = sys.argv[1] == "gpu"
dev = "cuda" if gpu else "cpu"
n = 8192 if gpu else 1024
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
sync = torch.cuda.synchronize if gpu else (lambda: None)
for _ in range(3):
    a @ b
sync()
reps = 10
t = time.perf_counter()
for _ in range(reps):
    a @ b
sync()
s = (time.perf_counter() - t) / reps
print(f"{2 * n ** 3 / s / 1e12:.1f}")
PY
)
echo "bf16 matmul ${PEAK} TFLOP/s"

BATCH=${BENCH_BATCH:-2}
SEQ=${BENCH_SEQ:-8192}
DEVICE=cuda
CFG=configs/bench/gpu.yaml
if [ "$MODE" = cpu ]; then BATCH=1; SEQ=512; DEVICE=cpu; STEPS=1; fi
step "infini bench model on $DEVICE: $CFG, batch $BATCH x seq $SEQ, bf16 ($(elapsed))"
"$BUILD/infini" bench model --config "$CFG" --device "$DEVICE" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" \
  --precision bf16 run.device="$DEVICE" | tee "$BUILD.bench.log"
TPS=$(sed -n 's/^train fwd+bwd: \([0-9]*\) tokens\/s, \([0-9.]*\) GFLOP.*/\1/p' "$BUILD.bench.log")
GFLOPS=$(sed -n 's/^train fwd+bwd: \([0-9]*\) tokens\/s, \([0-9.]*\) GFLOP.*/\2/p' "$BUILD.bench.log")
[ -n "$TPS" ] || die "could not read tokens/s from the bench output above"
step "infini bench model with the matmul attention kernel (same shape) ($(elapsed))"
"$BUILD/infini" bench model --config "$CFG" --device "$DEVICE" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" \
  --precision bf16 --attention matmul run.device="$DEVICE" | tee "$BUILD.bench_matmul.log" || true
TPS_MM=$(sed -n 's/^train fwd+bwd: \([0-9]*\) tokens.*/\1/p' "$BUILD.bench_matmul.log")

echo "== summary ($(elapsed) in all)"
awk -v peak="$PEAK" -v tps="$TPS" -v g="$GFLOPS" -v mm="${TPS_MM:-0}" 'BEGIN {
  printf "bf16 matmul (torch, n^3):             %8.1f TFLOP/s\n", peak
  printf "infini training (sdpa), tokens/s:   %8d\n", tps
  printf "infini training, achieved:          %8.1f TFLOP/s\n", g / 1000
  printf "MFU (achieved / matmul rate):       %8.1f %%\n", 100 * g / 1000 / peak
  if (mm > 0) printf "sdpa / matmul attention kernel:     %8.2fx\n", tps / mm
}'
