// Runtime set-up: LibTorch uses every core (it starts with 1 on Debian) and a fast BLAS.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "lriad/io/runtime.h"

using namespace lriad;

TEST(Runtime, InitUsesRequestedThreadsAndAllCoresByDefault) {
  auto info = io::init_runtime(1);
  EXPECT_EQ(info.threads, 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  info = io::init_runtime(0);
  EXPECT_EQ(info.threads, info.cores);
  EXPECT_GE(info.cores, 1);
  EXPECT_NE(io::describe(info).find(std::to_string(info.threads) + " thread"), std::string::npos);
}

TEST(Runtime, BlasIsNotTheReferenceImplementation) {
  // Debian's LibTorch links libblas.so.3; the set-up installs libopenblas0-openmp so that it
  // resolves to OpenBLAS (the reference BLAS is ~100x slower on matmuls).
  auto a = torch::randn({64, 64});
  (void)a.matmul(a);  // make sure the BLAS is mapped
  const auto info = io::current_runtime();
  EXPECT_FALSE(info.blas_is_reference) << io::runtime_warnings(info);
  EXPECT_FALSE(info.blas_is_openblas_pthread) << io::runtime_warnings(info);
  EXPECT_TRUE(io::runtime_warnings(info).empty());
}

TEST(Runtime, WarningsNameTheProblem) {
  io::RuntimeInfo info;
  info.blas_library = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0";
  info.blas_is_reference = true;
  EXPECT_NE(io::runtime_warnings(info).find("libopenblas0-openmp"), std::string::npos);
}

TEST(Runtime, NativeBf16FlagsAreReadFromCpuinfo) {
  // Excerpts of /proc/cpuinfo: an AVX-512 machine without bf16, one with AVX-512 BF16 and AMX, an
  // aarch64 machine with the bf16 feature. Only the first processor's line counts.
  const std::string avx512 =
      "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
      "processor\t: 1\nflags\t\t: fpu avx512_bf16\n";
  const std::string sapphire = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n";
  const std::string graviton = "processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16\nCPU implementer\t: 0x41\n";
  EXPECT_EQ(io::native_bf16_flags(avx512), "");
  EXPECT_EQ(io::native_bf16_flags(sapphire), "avx512_bf16 amx_bf16");
  EXPECT_EQ(io::native_bf16_flags(graviton), "bf16");
  EXPECT_EQ(io::native_bf16_flags("flags : fpu avx512_bf16x\n"), "");  // whole words only
  EXPECT_EQ(io::native_bf16_flags(""), "");
  io::RuntimeInfo info;
  info.cpu_bf16 = "avx512_bf16";
  EXPECT_NE(io::describe(info).find("native bf16: avx512_bf16"), std::string::npos) << io::describe(info);
  info.cpu_bf16.clear();
  EXPECT_NE(io::describe(info).find("native bf16: no"), std::string::npos) << io::describe(info);
}
