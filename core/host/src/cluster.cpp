#include "cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

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

// A socket listening on 127.0.0.1:`port` (0: a free one), for the store to take over.
int listen_on_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(fmt::format("cannot open a socket for the store: {}", std::strerror(errno)));
  const int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    ::close(fd);
    throw Error(fmt::format("cannot serve the store on 127.0.0.1:{}: {}", port, std::strerror(error)));
  }
  return fd;
}

}  // namespace

bool loopback(const std::string& address) { return address == "localhost" || address.rfind("127.", 0) == 0; }

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
    w.local_size = std::max<std::int64_t>(1, integer_variable("LOCAL_WORLD_SIZE").value_or(1));
    w.launcher = std::getenv("TORCHELASTIC_RUN_ID") ? "torchrun" : "nas-host";
    w.agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE") &&
                    std::string(std::getenv("TORCHELASTIC_USE_AGENT_STORE")) == "True";
  } else if (auto procid = integer_variable("SLURM_PROCID")) {
    w.rank = *procid;
    w.size = integer_variable("SLURM_NTASKS").value_or(1);
    w.local_rank = integer_variable("SLURM_LOCALID").value_or(0);
    w.local_size = std::max<std::int64_t>(1, integer_variable("SLURM_NTASKS_PER_NODE").value_or(1));
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

Cluster::Cluster(World world, std::chrono::milliseconds timeout) : world_(std::move(world)), timeout_(timeout) {
  c10d::TCPStoreOptions options;
  options.port = world_.master_port;
  options.isServer = world_.coordinator() && !world_.agent_store;
  // The store has no authentication: when every process reaches it on loopback (nas-host --nproc,
  // MASTER_ADDR=127.0.0.1), it listens on loopback only, not on every interface as c10d would.
  if (options.isServer && loopback(world_.master_addr)) options.masterListenFd = listen_on_loopback(world_.master_port);
  options.waitWorkers = false;  // workers may join late
  options.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
  port_ = tcp->getPort();
  store_ = c10::make_intrusive<c10d::PrefixStore>("nas/", tcp);
}

std::map<std::string, std::optional<std::string>> Cluster::launch_environment(std::int64_t rank,
                                                                             std::int64_t local_rank) const {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world_.size)},
          {"LOCAL_RANK", std::to_string(local_rank)},
          {"LOCAL_WORLD_SIZE", std::to_string(world_.size)},  // all on this machine
          {"MASTER_ADDR", world_.master_addr},
          {"MASTER_PORT", std::to_string(port_)}};
}

c10::intrusive_ptr<c10d::Store> Cluster::connect() const {
  c10d::TCPStoreOptions options;
  options.port = port_;
  options.waitWorkers = false;
  options.timeout = std::chrono::seconds(10);  // connecting (c10d retries a refused connection until then)
  auto tcp = c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
  tcp->setTimeout(timeout_);  // its requests, as the first connection's
  return c10::make_intrusive<c10d::PrefixStore>("nas/", tcp);
}

}  // namespace nas
