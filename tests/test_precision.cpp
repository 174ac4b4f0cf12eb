// run.precision: auto picks bf16 only where the device computes it natively (train/run/runtime.h),
// read from /proc/cpuinfo's feature words; bench model's --precision takes the same three names.
// Not the numerics of bf16 autocast itself (test_core_model_props.cpp, test_trainer.cpp).
#include <gtest/gtest.h>

#include <string>

#include "support/run_util.h"
#include "train/run/runtime.h"

namespace infini {
// Named, not anonymous: the suite also builds as one unity translation unit.
namespace test_precision {

TEST(RunPrecision, CpuinfoFeatureWordsDecideNativeBf16) {
  // An AVX2 server (no AVX-512): emulated bf16.
  EXPECT_FALSE(cpuinfo_has_native_bf16("processor\t: 0\nmodel name\t: AMD EPYC\n"
                                       "flags\t\t: fpu sse2 avx avx2 fma bmi2\nprocessor\t: 1\n"));
  // Sapphire Rapids and Zen 4 name the bf16 instructions; a word must match whole.
  EXPECT_TRUE(cpuinfo_has_native_bf16("flags\t\t: avx2 avx512f avx512_bf16 avx512_vnni\n"));
  EXPECT_TRUE(cpuinfo_has_native_bf16("flags\t\t: avx512f amx_bf16 amx_tile amx_int8\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16("flags\t\t: avx512f avx512_bf16x avx512_fp16\n"));
  // Arm: the Features line.
  EXPECT_TRUE(cpuinfo_has_native_bf16("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16("Features\t: fp asimd sve svebf16\n"));
  // A word elsewhere than a flags or Features line does not count; nothing readable is no.
  EXPECT_FALSE(cpuinfo_has_native_bf16("model name\t: avx512_bf16 test part\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16(""));
}

TEST(RunPrecision, AutoIsBf16OnCudaAndOnNativeCpusOnly) {
  const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA, 0);
  for (const bool native : {false, true}) {
    EXPECT_FALSE(resolve_bf16(Precision::fp32, cpu, native));
    EXPECT_FALSE(resolve_bf16(Precision::fp32, cuda, native));
    EXPECT_TRUE(resolve_bf16(Precision::bf16, cpu, native));  // asked for: honoured (with a warning)
    EXPECT_TRUE(resolve_bf16(Precision::bf16, cuda, native));
    EXPECT_TRUE(resolve_bf16(Precision::auto_, cuda, native));
    EXPECT_EQ(resolve_bf16(Precision::auto_, cpu, native), native);
  }
}

TEST(RunPrecision, BenchModelTakesAutoAndSaysWhatItRan) {
  const std::string cfg = test::source_path("configs/tiny/pretrain.yaml");
  auto r = test::run_infini("bench model --config " + cfg + " --batch 1 --seq 32 --steps 1 --precision auto");
  ASSERT_EQ(r.code, 0) << r.output;
  const bool native = cpu_has_native_bf16();
  const std::string want = std::string("setup: precision ") + (native ? "bf16" : "fp32");
  EXPECT_NE(r.output.find(want), std::string::npos) << r.output;
  // The machine's matmul rates and MFU; a share of an emulated bf16's rate is not printed.
  EXPECT_NE(r.output.find("matmul rate: fp32 "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("(bf16 is emulated on this CPU)") != std::string::npos, !native) << r.output;
  EXPECT_EQ(r.output.find("of bf16's") != std::string::npos, false) << r.output;  // fp32 here, or bf16 itself
  // In fp32 on the CPU the fast one-token step applies, and the general path is timed beside it.
  if (!native) {
    EXPECT_NE(r.output.find("stream tokens, general path: "), std::string::npos) << r.output;
  }
  r = test::run_infini("bench model --config " + cfg + " --precision half");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("error: --precision: expected fp32, bf16 or auto, found 'half'"), std::string::npos)
      << r.output;
}

}  // namespace test_precision
}  // namespace infini
