// SPDX-License-Identifier: GPL-3.0-or-later
// bf16 autocast for work on a CUDA device. On the CPU the guard does nothing:
// there the float32 kernels (and OpenBLAS) are the fast path. Training and
// inference threads.
#pragma once

#include <torch/torch.h>

#if TATUMFLOW_CUDA
#include <ATen/autocast_mode.h>
#endif

namespace tatumflow::model {

class Bf16Autocast {
 public:
  // Active only when `enabled` and `device` is a CUDA device.
  Bf16Autocast(const torch::Device& device, bool enabled) {
#if TATUMFLOW_CUDA
    active_ = enabled && device.is_cuda();
    if (!active_) return;
    previous_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::increment_nesting();
#else
    (void)device;
    (void)enabled;
#endif
  }
  ~Bf16Autocast() {
#if TATUMFLOW_CUDA
    if (!active_) return;
    // The outermost guard frees the casted weight copies autocast keeps for the region.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, previous_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
#endif
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
#if TATUMFLOW_CUDA
  bool active_ = false;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
#endif
};

}  // namespace tatumflow::model
