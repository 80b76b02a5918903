// SPDX-License-Identifier: GPL-3.0-or-later
// A test suite that runs the CLI on the bundled model over a synthetic token
// cache its tests share (built once per suite); it skips where the CLI or the
// bundled model is missing.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>

#include "bundled_model.hpp"
#include "cli_run.hpp"
#include "model_fixtures.hpp"

namespace tatumflow::testing {

template <int Performances, int SecondsEach>
class BundledModelCliSuite : public ::testing::Test {
 public:
  static inline const std::filesystem::path kModel = bundled_model_path();

 protected:
  static void SetUpTestSuite() {
    directory_ = new TempDir("tf-cli-suite");
    cache_ = new std::filesystem::path(build_synthetic_cache(directory_->path(), Performances, SecondsEach));
  }
  static void TearDownTestSuite() {
    delete cache_;
    delete directory_;
  }
  void SetUp() override {
    if (!std::filesystem::exists(cli_path())) GTEST_SKIP() << "no CLI at " << cli_path();
    if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "no bundled model at " << kModel;
  }

  static inline TempDir* directory_ = nullptr;
  static inline std::filesystem::path* cache_ = nullptr;
};

}  // namespace tatumflow::testing
