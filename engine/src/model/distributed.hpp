// SPDX-License-Identifier: GPL-3.0-or-later
// Data-parallel training over processes with torch c10d's Gloo backend (CPU).
// Configured like torchrun: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; rank 0
// hosts the TCPStore rendezvous. Optional GLOO_SOCKET_IFNAME picks the network
// interface. Training thread only; every rank must make the same calls in the
// same order.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

namespace tatumflow::model {

class DataParallel {
 public:
  // nullptr when WORLD_SIZE is unset or 1. Throws ModelError for malformed or
  // missing variables, or when the rendezvous fails (naming address and port).
  [[nodiscard]] static std::unique_ptr<DataParallel> from_environment();
  ~DataParallel();

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int world_size() const { return world_size_; }

  // In place: every tensor becomes the mean over ranks (one flattened all-reduce).
  void average(const std::vector<torch::Tensor>& tensors);
  // In place: every tensor becomes rank 0's.
  void broadcast(const std::vector<torch::Tensor>& tensors);

  struct Group;

 private:
  DataParallel(int rank, int world_size, std::unique_ptr<Group> group);
  int rank_;
  int world_size_;
  std::unique_ptr<Group> group_;
};

}  // namespace tatumflow::model
