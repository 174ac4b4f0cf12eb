#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, clang-14, ASan + UBSan, Debian's LibTorch) when needed
# and runs each for SECONDS from its committed seed corpus, one after the other, one worker each.
# Not a test: the replay test (tests/test_fuzz_replay.cpp) runs the committed inputs in ctest.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 seconds, every target; docs/fuzzing.md)
#   Targets: config records chat safetensors llama2c shard_index trainer_state
#   BUILD_DIR=build-fuzz, JOBS=2, FUZZ_ARGS="..." (more libFuzzer flags, e.g. -seed=1)
# The corpus grows in BUILD_DIR/fuzz-corpus/<target> (seeded from tests/fuzz/corpus/<target>, which
# stays as committed); findings land in BUILD_DIR/fuzz-findings/<target>/, logs in BUILD_DIR/fuzz-logs/.
# Exits 1 when any target found something (a crash, a sanitizer report, a timeout, an out-of-memory).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
shift || true
ALL_TARGETS=(config records chat safetensors llama2c shard_index trainer_state)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}

die() { echo "fuzz.sh: $*" >&2; exit 2; }
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, found '$SECONDS_PER_TARGET'"
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (expected one of: ${ALL_TARGETS[*]})"
done

# The longest input each target is given (libFuzzer's -max_len): a few times its largest seed.
max_len() {
  case "$1" in
    trainer_state) echo 32768 ;;  # a real state holds 10 KB of CPU generator state
    chat) echo 2048 ;;
    *) echo 8192 ;;
  esac
}

command -v clang++-14 >/dev/null || die "clang++-14 not found (apt-get install clang-14)"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "==> configuring $BUILD_DIR/ (clang-14, INFINI_FUZZ=ON)"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DINFINI_FUZZ=ON -DINFINI_BUILD_TESTS=OFF -DINFINI_UNITY_BUILD=ON >"$BUILD_DIR.cmake.log" 2>&1 \
    || { cat "$BUILD_DIR.cmake.log" >&2; die "cmake configure failed"; }
fi
echo "==> building ${TARGETS[*]/#/fuzz_} ($JOBS jobs)"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]/#/fuzz_}" >"$BUILD_DIR/fuzz-build.log" 2>&1 \
  || { tail -40 "$BUILD_DIR/fuzz-build.log" >&2; die "build failed (see $BUILD_DIR/fuzz-build.log)"; }

export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The targets write each input to $TMPDIR/infini-fuzz-<pid>/; libFuzzer ends without running the
# code that removes it, so it lives in the build folder and goes after each target.
export TMPDIR="$(cd "$BUILD_DIR" && pwd)/fuzz-tmp"
mkdir -p "$BUILD_DIR/fuzz-logs" "$TMPDIR"
found=0
rows=()
for t in "${TARGETS[@]}"; do
  corpus="$BUILD_DIR/fuzz-corpus/$t"
  findings="$BUILD_DIR/fuzz-findings/$t"
  log="$BUILD_DIR/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$findings"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  before=$(find "$findings" -type f | wc -l)
  echo "==> fuzz_$t for ${SECONDS_PER_TARGET}s (log: $log)"
  rc=0
  # shellcheck disable=SC2086
  "$BUILD_DIR/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$findings/" \
    "${dict[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?
  rm -rf "$TMPDIR"/infini-fuzz-*
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # libFuzzer's corpus at the end (corp: units/bytes); the folder also keeps units it has since replaced
  size=$(sed -n 's/.*DONE .* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' "$log" | tail -1)
  [ -n "$size" ] || size="$(find "$corpus" -type f | wc -l) files"
  new=$(( $(find "$findings" -type f | wc -l) - before ))
  if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    found=1
    what=$(grep -m1 -E '^(FINDING|==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" || echo "exit code $rc")
    rows+=("$(printf '%-14s %12s %8s %12s  FOUND: %s' "$t" "${execs:-?}" "${rate:-?}" "$size" "$what")")
    ls -t "$findings" | head -1 | sed "s|^|    input: $findings/|"
  else
    rows+=("$(printf '%-14s %12s %8s %12s  none' "$t" "${execs:-?}" "${rate:-?}" "$size")")
  fi
done
echo
printf '%-14s %12s %8s %12s  %s\n' target executions exec/s corpus findings
printf '%s\n' "${rows[@]}"
exit "$found"
