// SPDX-License-Identifier: GPL-3.0-or-later
// Where the bundled model and its styles live in the source tree: one place to
// change when the model is renamed.
#pragma once

#include <filesystem>

namespace tatumflow::testing {

inline std::filesystem::path bundled_model_path() {
  return std::filesystem::path(TATUMFLOW_SOURCE_DIR) / "models" / "tatumflow.tfc";
}

inline std::filesystem::path bundled_styles_dir() {
  return std::filesystem::path(TATUMFLOW_SOURCE_DIR) / "models" / "styles";
}

}  // namespace tatumflow::testing
