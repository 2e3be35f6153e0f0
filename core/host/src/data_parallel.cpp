#include "data_parallel.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/nn/module.h>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "cluster.hpp"
#include "nas/error.hpp"

namespace nas {
namespace {

// Waits for a collective. When another rank has died (killed, out of memory), Gloo and NCCL fail the
// collectives of the others (the peer's connection closed) instead of waiting: each rank stops with
// the same clear error, and the checkpoints rank 0 wrote are there for --resume.
void wait(c10d::Work& work) {
  try {
    work.wait();
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw Error(fmt::format("data-parallel training: another rank stopped ({}); this one stops too. The last "
                            "checkpoint is kept: 'nas-host run --resume RUN_DIR' continues from it",
                            what.substr(0, what.find('\n'))));
  }
}

}  // namespace

// Every rank sees every rank's device through the store, so all choose the same backend.
c10::intrusive_ptr<c10d::Backend> process_group(const Cluster& cluster, const std::string& name, c10::Device device) {
  auto store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("process_group/{}/", name), cluster.store_handle());
  const World& world = cluster.world();
  const auto rank = static_cast<int>(world.rank), size = static_cast<int>(world.size);
  store->set(fmt::format("device/{}", rank), fmt::format("{}/{}", host_name(), device.str()));
  std::vector<std::string> devices;
  for (int r = 0; r < size; ++r) devices.push_back(store->get_to_str(fmt::format("device/{}", r)));  // waits for r
  std::sort(devices.begin(), devices.end());
  const bool own_gpus = device.is_cuda() && std::adjacent_find(devices.begin(), devices.end()) == devices.end();
#ifdef USE_C10D_NCCL
  if (own_gpus) {
    c10::cuda::set_device(device.index());
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, c10d::ProcessGroupNCCL::Options::create());
  }
#else
  (void)own_gpus;
#endif
  auto options = c10d::ProcessGroupGloo::Options::create();
  // Local runs stay on loopback; on a cluster, GLOO_SOCKET_IFNAME picks the (private) interface.
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface && *interface)
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  else if (loopback(world.master_addr))
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

struct DataParallel::State {
  struct Bucket {
    at::Tensor flat;                       // the gradients of its parameters, end to end
    std::vector<std::size_t> members;      // parameter numbers
    std::size_t pending = 0;               // members whose gradient has not arrived this step
    c10::intrusive_ptr<c10d::Work> work;   // its all-reduce, once started
  };
  struct Slot {
    std::size_t bucket = 0;
    std::int64_t offset = 0;
  };

  c10::intrusive_ptr<c10d::Backend> backend, statistics;
  std::int64_t rank = 0, size = 1;
  c10::Device device{c10::kCPU};
  std::vector<at::Tensor> parameters, buffers;
  std::vector<Slot> slots;
  std::vector<bool> arrived;
  std::vector<Bucket> buckets;
  std::size_t next_bucket = 0;  // buckets start in order on every rank, so that the collectives match
  std::vector<unsigned> hooks;
  std::mutex mutex;             // hooks run on autograd's threads

  at::Tensor slice(std::size_t p) {
    return buckets[slots[p].bucket].flat.narrow(0, slots[p].offset, parameters[p].numel());
  }

  void arrive(std::size_t p, const at::Tensor& grad) {
    std::lock_guard lock(mutex);
    slice(p).copy_(grad.reshape(-1));
    arrived[p] = true;
    if (--buckets[slots[p].bucket].pending == 0) start_ready();
  }

  // Starts the all-reduce of every complete bucket next in line.
  void start_ready() {
    for (; next_bucket < buckets.size() && buckets[next_bucket].pending == 0; ++next_bucket) {
      std::vector<at::Tensor> tensors{buckets[next_bucket].flat};
      buckets[next_bucket].work = backend->allreduce(tensors);
    }
  }

  // Runs `collective` (a broadcast, an all-reduce) on every tensor at once, each through a dense copy
  // (the collectives want dense rows; parameters may be channels_last), and writes the results back.
  template <class Collective>
  void in_place(const std::vector<at::Tensor>& tensors, Collective collective) {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> copies;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const at::Tensor& t : tensors) {
      copies.push_back(t.contiguous());
      std::vector<at::Tensor> one{copies.back()};
      works.push_back(collective(one));
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      wait(*works[i]);
      tensors[i].copy_(copies[i]);
    }
  }
};

DataParallel::DataParallel(const Cluster& cluster, const std::string& name, torch::nn::Module& network,
                           c10::Device device, std::int64_t bucket_bytes)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.rank = cluster.world().rank;
  s.size = cluster.world().size;
  s.device = device;
  s.backend = process_group(cluster, name, device);
  s.statistics = process_group(cluster, name + "/bn", device);

  for (const at::Tensor& p : network.parameters())
    if (p.requires_grad()) s.parameters.push_back(p);
  for (const at::Tensor& b : network.buffers())
    if (b.is_floating_point()) s.buffers.push_back(b);

  // Every replica starts from rank 0's weights.
  std::vector<at::Tensor> state = s.parameters;
  for (const at::Tensor& b : network.buffers()) state.push_back(b);
  s.in_place(state, [&](std::vector<at::Tensor>& t) { return s.backend->broadcast(t); });

  // Buckets of about `bucket_bytes`, one dtype each, filled in reverse order of definition: roughly
  // the order in which backward produces the gradients, so the first buckets start early.
  std::vector<std::int64_t> elements, bytes;
  s.slots.resize(s.parameters.size());
  for (std::size_t p = s.parameters.size(); p-- > 0;) {
    const at::Tensor& param = s.parameters[p];
    const std::int64_t size = param.numel() * static_cast<std::int64_t>(param.element_size());
    if (s.buckets.empty() || bytes.back() + size > bucket_bytes ||
        s.parameters[s.buckets.back().members.front()].scalar_type() != param.scalar_type()) {
      s.buckets.emplace_back();
      elements.push_back(0);
      bytes.push_back(0);
    }
    s.slots[p] = {s.buckets.size() - 1, elements.back()};
    s.buckets.back().members.push_back(p);
    elements.back() += param.numel();
    bytes.back() += size;
  }
  for (std::size_t b = 0; b < s.buckets.size(); ++b) {
    State::Bucket& bucket = s.buckets[b];
    bucket.flat = at::zeros({elements[b]}, s.parameters[bucket.members.front()].options());
    bucket.pending = bucket.members.size();
  }
  s.arrived.assign(s.parameters.size(), false);
  for (std::size_t p = 0; p < s.parameters.size(); ++p)
    s.hooks.push_back(s.parameters[p].register_hook([state = state_.get(), p](const at::Tensor& grad) { state->arrive(p, grad); }));
}

DataParallel::~DataParallel() {
  for (std::size_t p = 0; p < state_->hooks.size(); ++p) state_->parameters[p].remove_hook(state_->hooks[p]);
}

std::int64_t DataParallel::rank() const { return state_->rank; }
std::int64_t DataParallel::size() const { return state_->size; }

void DataParallel::finalize() {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  for (std::size_t b = s.next_bucket; b < s.buckets.size(); ++b)
    for (std::size_t p : s.buckets[b].members)
      if (!s.arrived[p]) {
        s.slice(p).zero_();
        s.arrived[p] = true;
        --s.buckets[b].pending;
      }
  s.start_ready();
  torch::NoGradGuard no_grad;
  for (State::Bucket& bucket : s.buckets) {
    wait(*bucket.work);
    bucket.work.reset();
    bucket.flat.div_(static_cast<double>(s.size));
    for (std::size_t p : bucket.members) {
      at::Tensor& grad = s.parameters[p].mutable_grad();
      at::Tensor average = s.slice(p).view(s.parameters[p].sizes());
      if (grad.defined()) grad.copy_(average);
      else grad = average.clone();
      s.arrived[p] = false;
    }
    bucket.pending = bucket.members.size();
  }
  s.next_bucket = 0;
}

void DataParallel::average_buffers() {
  State& s = *state_;
  s.in_place(s.buffers, [&](std::vector<at::Tensor>& t) { return s.backend->allreduce(t); });
  torch::NoGradGuard no_grad;
  for (at::Tensor& b : s.buffers) b.div_(static_cast<double>(s.size));
}

at::Tensor DataParallel::sum(const at::Tensor& local) {
  std::vector<at::Tensor> tensors{local.contiguous().clone()};
  wait(*state_->statistics->allreduce(tensors));
  return tensors[0];
}

std::vector<double> DataParallel::sum(const std::vector<double>& values) {
  std::vector<at::Tensor> tensors{at::tensor(values, at::kDouble).to(state_->device)};
  wait(*state_->backend->allreduce(tensors));
  at::Tensor total = tensors[0].cpu();
  return std::vector<double>(total.data_ptr<double>(), total.data_ptr<double>() + total.numel());
}

std::int64_t ClusterProcessGroup::rank() const { return cluster_.world().rank; }
std::int64_t ClusterProcessGroup::size() const { return cluster_.world().size; }

std::unique_ptr<Reducer> ClusterProcessGroup::reducer(torch::nn::Module& network, c10::Device device) const {
  return std::make_unique<DataParallel>(cluster_, cluster_.next_name("trainer"), network, device);
}

}  // namespace nas
