// All-reduce bandwidth through the process groups that data-parallel training uses (c10d NCCL when
// every rank has a GPU of its own, Gloo otherwise), the ranks being processes of this machine.
//
//   build/release/bin/nas_bench_allreduce [--ranks 2] [--device cpu|cuda] [--share 0] [--sizes_mb 1,16,64]
//                                         [--iters 20]
//
// Rank r uses GPU r modulo the GPUs there are, or GPU 0 with --share 1 (processes sharing a GPU). Prints one line per size: the time of one all-reduce of
// float32 tensors, the algorithm bandwidth (bytes / time) and the bus bandwidth (algbw x 2(n-1)/n, as
// nccl-tests reports it: what each link carries).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "cluster.hpp"
#include "data_parallel.hpp"
#include "flags.hpp"

namespace {

using bench::flag;
using bench::text_flag;

void measure(const nas::Cluster& cluster, c10::Device device, const std::vector<std::int64_t>& sizes_mb, int iters) {
  auto group = nas::process_group(cluster, "bench", device);
  const auto ranks = cluster.world().size;
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  for (std::int64_t mb : sizes_mb) {
    std::vector<at::Tensor> tensors{at::ones({mb << 18}, at::TensorOptions(at::kFloat).device(device))};
    for (int i = 0; i < 3; ++i) group->allreduce(tensors)->wait();
    sync();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) group->allreduce(tensors)->wait();
    sync();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
    const double algbw = static_cast<double>(mb << 20) / seconds / 1e9;
    if (cluster.world().rank == 0)
      fmt::print("allreduce backend {} ranks {} device {} size_mb {} ms {:.3f} algbw_gb_s {:.2f} busbw_gb_s {:.2f}\n",
                 group->getBackendName(), ranks, device.type() == c10::kCUDA ? "cuda" : "cpu", mb, 1e3 * seconds,
                 algbw, algbw * 2.0 * static_cast<double>(ranks - 1) / static_cast<double>(ranks));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t ranks = flag(argc, argv, "ranks", 2);
  const int iters = static_cast<int>(flag(argc, argv, "iters", 20));
  std::vector<std::int64_t> sizes_mb;
  std::stringstream list(text_flag(argc, argv, "sizes_mb", "1,16,64"));
  for (std::string item; std::getline(list, item, ',');) sizes_mb.push_back(std::stoll(item));
  const std::int64_t rank = flag(argc, argv, "rank", 0);
  const auto port = static_cast<std::uint16_t>(flag(argc, argv, "port", 0));

  // Rank 0 serves the store, then starts the other ranks as copies of this program (before touching
  // CUDA, which a forked process could not use).
  nas::Cluster cluster(nas::World{rank, ranks, rank, "127.0.0.1", port, false, "bench"}, std::chrono::seconds(60));
  std::vector<pid_t> children;
  if (rank == 0)
    for (std::int64_t r = 1; r < ranks; ++r) {
      std::vector<std::string> args(argv, argv + argc);
      for (const std::string& extra : {std::string("--rank"), std::to_string(r), std::string("--port"), std::to_string(cluster.port())})
        args.push_back(extra);
      pid_t pid = fork();
      if (pid == 0) {
        std::vector<char*> raw;
        for (std::string& a : args) raw.push_back(a.data());
        raw.push_back(nullptr);
        execv("/proc/self/exe", raw.data());
        _exit(127);
      }
      children.push_back(pid);
    }
  const bool cuda = text_flag(argc, argv, "device", "cpu") == "cuda";
  c10::Device device(c10::kCPU);
  if (cuda) {
    const std::int64_t gpu = text_flag(argc, argv, "share", "0") == "1" ? 0 : rank % torch::cuda::device_count();
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(gpu));
  }
  measure(cluster, device, sizes_mb, iters);
  int failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  return failed == 0 ? 0 : 1;
}
