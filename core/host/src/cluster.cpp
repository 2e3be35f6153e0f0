#include "cluster.hpp"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "nas/error.hpp"

namespace nas {
namespace {

std::optional<std::int64_t> integer_variable(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return std::nullopt;
  char* end = nullptr;
  long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value < 0)
    throw UsageError(fmt::format("environment variable {}='{}': expected a non-negative integer", name, text));
  return value;
}

}  // namespace

std::string host_name() {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  return host;
}

World World::from_environment() {
  World w;
  if (auto rank = integer_variable("RANK")) {
    w.rank = *rank;
    w.size = integer_variable("WORLD_SIZE").value_or(1);
    w.local_rank = integer_variable("LOCAL_RANK").value_or(0);
    w.launcher = std::getenv("TORCHELASTIC_RUN_ID") ? "torchrun" : "nas-host";
    w.agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE") &&
                    std::string(std::getenv("TORCHELASTIC_USE_AGENT_STORE")) == "True";
  } else if (auto procid = integer_variable("SLURM_PROCID")) {
    w.rank = *procid;
    w.size = integer_variable("SLURM_NTASKS").value_or(1);
    w.local_rank = integer_variable("SLURM_LOCALID").value_or(0);
    w.launcher = "slurm";
  } else {
    return w;
  }
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) w.master_addr = addr;
  if (auto port = integer_variable("MASTER_PORT")) {
    if (*port > 65535) throw UsageError(fmt::format("environment variable MASTER_PORT={}: expected a port (1..65535)", *port));
    w.master_port = static_cast<std::uint16_t>(*port);
  }
  if (w.master_port == 0)
    throw UsageError(fmt::format("{} rank {}: MASTER_PORT is not set; every process must know where rank 0 serves the "
                                 "store (e.g. MASTER_ADDR=<first node> MASTER_PORT=29500)", w.launcher, w.rank));
  if (w.rank >= w.size)
    throw UsageError(fmt::format("rank {} is not below the world size {} (RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS)",
                                 w.rank, w.size));
  return w;
}

Cluster::Cluster(World world, std::chrono::milliseconds timeout) : world_(std::move(world)) {
  c10d::TCPStoreOptions options;
  options.port = world_.master_port;
  options.isServer = world_.coordinator() && !world_.agent_store;
  options.waitWorkers = false;  // workers may join late
  options.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
  port_ = tcp->getPort();
  store_ = c10::make_intrusive<c10d::PrefixStore>("nas/", tcp);
}

}  // namespace nas
