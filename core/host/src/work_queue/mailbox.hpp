// A queue of messages on the run's c10d store with one reader, who blocks on it without polling:
// the transport of the work queue (work_queue.cpp). Internal to the core (exported for its tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "nas/api.hpp"

namespace nas {

/// Messages live in the c10d queue `name`; each post also sets the key `name/bell`, which the reader
/// waits for (a server-side wait, woken by the set). Why not c10d's blocking queuePop: it returns at
/// once on a queue that exists but is empty (measured: a reader spinning on it took 80% of a core).
/// The reader clears the bell before it empties the queue, so a message posted after the emptying
/// rings a bell the next wait sees: no message waits for a later one. A poster that dies between its
/// push and its ring loses nothing: its message is read at the next ring (anyone's, or ring()).
class NAS_API Mailbox {
 public:
  Mailbox(c10d::Store& store, std::string name) : store_(store), name_(std::move(name)) {}

  void post(const std::string& message);
  /// Wakes the reader without a message (its take() returns nothing).
  void ring();
  /// Every message waiting, in posting order; when there is none, blocks until one is posted or
  /// ring() is called, and returns what came (possibly nothing). The reader only.
  std::vector<std::string> take();
  /// Every message waiting, without blocking. The reader only.
  std::vector<std::string> waiting();

 private:
  std::string bell() const { return name_ + "/bell"; }

  c10d::Store& store_;
  std::string name_;
};

/// Requests this process has sent to the store for its work queues (mailboxes and heartbeats).
NAS_API std::int64_t queue_requests();
/// Counts `n` more requests made outside a Mailbox (heartbeats, the coordinator's checks).
NAS_API void count_queue_requests(std::int64_t n);

}  // namespace nas
