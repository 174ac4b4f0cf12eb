// The libFuzzer entry point of one fuzz binary: INFINI_FUZZ_TARGET (a compile definition, e.g.
// fuzz_config) names the target of tests/fuzz/targets.h it forwards to. A finding is printed and
// aborts, which libFuzzer reports as a crash and saves the input. Not built outside INFINI_FUZZ.
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/targets.h"

#ifndef INFINI_FUZZ_TARGET
#error "INFINI_FUZZ_TARGET must name the target function (CMakeLists.txt sets it per binary)"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const infini::fuzz::Outcome o = infini::fuzz::INFINI_FUZZ_TARGET(data, size);
  if (!o.finding.empty()) {
    std::fprintf(stderr, "FINDING: %s\n", o.finding.c_str());
    std::abort();
  }
  return 0;
}
