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
