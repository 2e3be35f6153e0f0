// Evaluations in a supervised child process: whatever a child network does there (a kernel that
// corrupts the heap, an abort, a segfault, the OOM killer), the search process goes on. The child
// is `nas-host evaluator`, started once and reused; a child that dies is replaced at once and the
// evaluation retried on the fresh one, then recorded as failed with the signal as its reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nas/evaluator.hpp"
#include "nas/schema.hpp"

namespace nas {

class Logger;
class Registry;
struct StageContext;
struct StageConfig;

/// How this process starts evaluator processes for its run (the host sets it in the StageContext; without
/// it, e.g. when a test runs a stage in its own process, evaluators run in the stage's process).
struct EvaluatorProcesses {
  std::string executable;                 ///< nas-host
  std::vector<std::string> child_args;   ///< --plugin-path ..., --log-level, as this process was given them
  std::filesystem::path run_dir;          ///< holds config.yaml, the resolved config
  std::filesystem::path log_file;         ///< where the child's log lines go too
  int threads = 1;                        ///< intra-op threads of the child (this process waits meanwhile)
};

/// The parameters of a stage that evaluates through stage_evaluator: `isolation` and `retries`.
Schema isolation_params();

/// The evaluator of `stage` for this process: in a supervised child process when the stage's
/// `isolation` is `process` and the context can start one, else the stage's own evaluator in-process.
std::unique_ptr<Evaluator> stage_evaluator(const StageConfig& stage, const Registry& registry, const StageContext& context);

/// The child's end of the channel (`nas-host evaluator`, which finds it at file descriptor 3).
class ParentChannel {
 public:
  explicit ParentChannel(int fd);
  ~ParentChannel();
  ParentChannel(const ParentChannel&) = delete;
  ParentChannel& operator=(const ParentChannel&) = delete;

  /// Says it is ready, then evaluates every candidate that arrives until the parent closes the channel.
  void serve(Evaluator& evaluator);
  /// Tells the parent why this process stops (setup failed, or an evaluator threw: a broken
  /// evaluator stops the search, as in-process); returns the exit code, 2 for a UsageError, else 1.
  int fail(std::exception_ptr error);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// "SIGSEGV", "SIGKILL", ... for a signal number.
std::string signal_name(int signal);

}  // namespace nas
