// The processes of one run: who this one is (rank, world size, from nas-host --nproc, torchrun or
// SLURM) and the c10d TCPStore they share. Internal to the core (exported for its tests).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "nas/api.hpp"

namespace nas {

struct NAS_API World {
  std::int64_t rank = 0;        ///< 0: the coordinator (controller and store); others evaluate
  std::int64_t size = 1;
  std::int64_t local_rank = 0;  ///< on this machine: the GPU to use
  std::string master_addr = "127.0.0.1";
  std::uint16_t master_port = 0;
  bool agent_store = false;     ///< torchrun's agent runs the TCPStore; every rank is a client
  std::string launcher = "single";  ///< single, nas-host, torchrun, slurm
  std::int64_t local_size = 1;  ///< processes of the run on this machine, the coordinator's included if it is here

  /// From RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT (nas-host --nproc,
  /// torchrun) or SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID/SLURM_NTASKS_PER_NODE; a single process when
  /// neither is set. Throws UsageError
  /// naming the variable when one is malformed.
  static World from_environment();
  bool coordinator() const { return rank == 0; }
};

/// This machine's host name (as gethostname gives it).
NAS_API std::string host_name();
/// Whether `address` names this machine's loopback interface (localhost, 127.x.y.z).
NAS_API bool loopback(const std::string& address);

/// The run's key-value store: rank 0 serves it (unless torchrun's agent does), every rank connects;
/// keys live under "nas/". `port` 0 on the server picks a free port (read it back with port()).
class NAS_API Cluster {
 public:
  Cluster(World world, std::chrono::milliseconds timeout);
  const World& world() const { return world_; }
  c10d::Store& store() const { return *store_; }
  const c10::intrusive_ptr<c10d::Store>& store_handle() const { return store_; }  ///< for c10d's own users
  /// Another connection to the store, for another thread (c10d stores are not shared across threads).
  /// Throws c10::DistError within seconds when the store is gone: unlike a process's first
  /// connection, it has no rank 0 to wait for.
  c10::intrusive_ptr<c10d::Store> connect() const;
  std::uint16_t port() const { return port_; }
  /// What World::from_environment() reads, for process `rank` of this world that nas-host starts on
  /// this machine itself (--nproc) with GPU `local_rank`.
  std::map<std::string, std::optional<std::string>> launch_environment(std::int64_t rank, std::int64_t local_rank) const;
  /// "<prefix>-<n>" for the n-th call on this process: the same sequence on every rank that makes
  /// the same calls in the same order (names for process groups).
  std::string next_name(const std::string& prefix) const { return prefix + "-" + std::to_string(names_++); }

 private:
  World world_;
  std::chrono::milliseconds timeout_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::uint16_t port_ = 0;
  mutable std::atomic<int> names_{0};
};

}  // namespace nas
