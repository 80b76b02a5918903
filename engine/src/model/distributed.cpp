// SPDX-License-Identifier: GPL-3.0-or-later
#include "distributed.hpp"

#include <chrono>
#include <cstdlib>
#include <string>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

namespace {

constexpr std::chrono::seconds kRendezvousTimeout{120};
// Rank 0 validates and writes checkpoints while the others wait in the next
// all-reduce, so collectives get far longer than the rendezvous.
constexpr std::chrono::minutes kCollectiveTimeout{30};

long env_integer(const char* name, long low, long high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') throw ModelError(std::string("distributed training needs ") + name);
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < low || value > high) {
    throw ModelError(std::string(name) + "=\"" + text + "\" is not an integer in [" + std::to_string(low) +
                     ", " + std::to_string(high) + "]");
  }
  return value;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& tensor : tensors) flat.push_back(tensor.detach().reshape({-1}));
  return torch::cat(flat);
}

void unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (const auto& tensor : tensors) {
    const std::int64_t n = tensor.numel();
    tensor.copy_(flat.narrow(0, offset, n).view_as(tensor));
    offset += n;
  }
}

}  // namespace

DataParallel::DataParallel(int rank, int world_size, std::unique_ptr<Group> group)
    : rank_(rank), world_size_(world_size), group_(std::move(group)) {}

DataParallel::~DataParallel() = default;

std::unique_ptr<DataParallel> DataParallel::from_environment() {
  const char* world_text = std::getenv("WORLD_SIZE");
  if (world_text == nullptr || *world_text == '\0') return nullptr;
  const int world_size = static_cast<int>(env_integer("WORLD_SIZE", 1, 4096));
  if (world_size == 1) return nullptr;
  const int rank = static_cast<int>(env_integer("RANK", 0, world_size - 1));
  const char* address_text = std::getenv("MASTER_ADDR");
  if (address_text == nullptr || *address_text == '\0')
    throw ModelError("distributed training needs MASTER_ADDR");
  const std::string address = address_text;
  const auto port = static_cast<std::uint16_t>(env_integer("MASTER_PORT", 1, 65535));

  auto group = std::make_unique<Group>();
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = port;
    store_options.isServer = rank == 0;
    store_options.numWorkers = world_size;
    store_options.waitWorkers = true;
    store_options.timeout = kRendezvousTimeout;
    group->store = c10::make_intrusive<c10d::PrefixStore>(
        "tatumflow", c10::make_intrusive<c10d::TCPStore>(address, store_options));

    auto options = c10d::ProcessGroupGloo::Options::create(kCollectiveTimeout);
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
        interface != nullptr && *interface != '\0') {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (address == "localhost" || address.rfind("127.", 0) == 0) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group->group = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, rank, world_size, options);
  } catch (const std::exception& e) {
    throw ModelError("distributed rendezvous at " + address + ":" + std::to_string(port) + " as rank " +
                     std::to_string(rank) + " of " + std::to_string(world_size) + " failed: " + e.what());
  }
  return std::unique_ptr<DataParallel>(new DataParallel(rank, world_size, std::move(group)));
}

void DataParallel::average(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat{flatten(tensors)};
  group_->group->allreduce(flat)->wait();
  flat[0].div_(world_size_);
  unflatten(flat[0], tensors);
}

void DataParallel::broadcast(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat{flatten(tensors)};
  group_->group->broadcast(flat)->wait();
  unflatten(flat[0], tensors);
}

}  // namespace tatumflow::model
