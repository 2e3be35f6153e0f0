// Evaluations in a supervised child process (`nas-host evaluator`): the parent's IsolatedEvaluator
// and the child's ParentChannel, speaking newline-delimited JSON over a Unix socket pair.
//
// Messages, child to parent: {"ready": true} once the evaluator is built; {"evaluation": {...}} for
// each candidate; {"error": "...", "usage": bool} before exiting on a setup or evaluator error.
// Parent to child: {"candidate": {...}}. The parent closing the socket tells the child to exit.
#include "stages/evaluator_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "nas/context.hpp"
#include "nas/error.hpp"
#include "nas/log.hpp"
#include "nas/stage.hpp"
#include "work_queue/work_queue.hpp"

namespace nas {
namespace {

// One JSON message per line, in both directions.
class Channel {
 public:
  explicit Channel(int fd) : fd_(fd) {}
  ~Channel() { ::close(fd_); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// False when the other end is gone.
  bool send(const nlohmann::json& message) {
    const std::string line = message.dump() + "\n";
    for (std::size_t sent = 0; sent < line.size();) {
      const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);  // no SIGPIPE
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// Empty when the other end is gone (a child that died: its socket closes with it).
  std::optional<nlohmann::json> receive() {
    for (;;) {
      if (const std::size_t end = buffer_.find('\n'); end != std::string::npos) {
        nlohmann::json message = nlohmann::json::parse(buffer_.substr(0, end));
        buffer_.erase(0, end + 1);
        return message;
      }
      char chunk[1 << 16];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

[[noreturn]] void rethrow_reported(const nlohmann::json& message) {
  const std::string what = message.at("error");
  if (message.value("usage", false)) throw UsageError(what);
  throw Error(what);
}

// `nas-host evaluator RUN_DIR STAGE ...`, its socket at descriptor 3, killed when this thread ends.
class ChildProcess {
 public:
  ChildProcess(const EvaluatorProcesses& how, const std::string& stage) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      throw Error(fmt::format("cannot start an evaluator process: socketpair: {}", std::strerror(errno)));
    std::vector<std::string> args{"nas-host", "evaluator", how.run_dir.string(), stage,
                                  "--threads", std::to_string(how.threads), "--log", how.log_file.string()};
    args.insert(args.end(), how.child_args.begin(), how.child_args.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw Error(fmt::format("cannot start an evaluator process: fork: {}", std::strerror(errno)));
    }
    if (pid_ == 0) {  // only async-signal-safe calls until exec: the parent has other threads
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a parent killed with -9 takes its child along
      if (::getppid() != parent) ::_exit(1);
      if (fds[1] == 3) ::fcntl(3, F_SETFD, 0);
      else ::dup2(fds[1], 3);  // the copy does not close on exec
      ::close_range(4, ~0U, 0);
      ::execv(how.executable.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    channel_.emplace(fds[0]);
  }

  ~ChildProcess() {
    if (pid_ <= 0) return;
    const bool idle = !busy_;
    channel_.reset();  // an idle child reads the end of the stream and exits
    if (!idle) ::kill(pid_, SIGKILL);
    pid_t reaped = 0;
    for (int i = 0; i < 500 && (reaped = ::waitpid(pid_, nullptr, WNOHANG)) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (reaped == 0) {  // still there after 5 s: never a pid already reaped, which another process may hold now
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  /// The reply to `request`; empty when the child died (then reaped: see death()).
  std::optional<nlohmann::json> ask(const nlohmann::json& request) {
    busy_ = true;
    std::optional<nlohmann::json> reply = channel_->send(request) ? receive() : std::nullopt;
    busy_ = false;
    if (!reply && pid_ > 0) reap();  // the send failed
    return reply;
  }
  /// The next message; empty when the child died (then reaped).
  std::optional<nlohmann::json> receive() {
    std::optional<nlohmann::json> reply = channel_->receive();
    if (!reply) reap();
    return reply;
  }
  /// How it ended, once ask() or receive() found it gone: "SIGSEGV", "exit status 3".
  const std::string& death() const { return death_; }

 private:
  void reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    death_ = WIFSIGNALED(status) ? signal_name(WTERMSIG(status)) : fmt::format("exit status {}", WEXITSTATUS(status));
    pid_ = 0;
  }

  pid_t pid_ = 0;
  std::optional<Channel> channel_;
  bool busy_ = false;
  std::string death_;
};

class IsolatedEvaluator final : public Evaluator {
 public:
  IsolatedEvaluator(const EvaluatorProcesses& how, std::string stage, std::int64_t retries, Logger& log)
      : how_(how), stage_(std::move(stage)), retries_(retries), log_(log) {
    // Now: a config or data error shows before the first candidate, as in-process.
    if (const std::string death = start(); !death.empty())
      throw Error(fmt::format("the evaluator process of stage '{}' died while starting ({}); see {}", stage_, death,
                              how_.log_file.string()));
  }

  Evaluation evaluate(const Candidate& candidate) override {
    std::string death;
    for (std::int64_t attempt = 0; attempt <= retries_; ++attempt) {
      // A replacement that dies while starting (memory not yet freed after an OOM kill, say) is an attempt.
      if (!child_ && !(death = start()).empty()) {
        log_.warn("evaluation #{}: a fresh evaluator process died while starting ({})", candidate.index, death);
        continue;
      }
      if (std::optional<nlohmann::json> reply = child_->ask({{"candidate", to_json(candidate)}})) {
        if (reply->contains("error")) rethrow_reported(*reply);
        return evaluation_from_json(reply->at("evaluation"));
      }
      death = child_->death();
      child_.reset();
      log_.warn("evaluation #{}: its evaluator process died ({}){}", candidate.index, death,
                attempt < retries_ ? fmt::format("; retrying on a fresh process ({} of {} retries)", attempt + 1, retries_)
                                   : "; recorded as failed");
    }
    Evaluation failed;
    failed.failure = fmt::format("worker died: {} ({} attempt{})", death, retries_ + 1, retries_ == 0 ? "" : "s");
    return failed;
  }

 private:
  // A ready child in child_, or how it died while starting (child_ then empty); rethrows what it reported.
  std::string start() {
    auto child = std::make_unique<ChildProcess>(how_, stage_);
    std::optional<nlohmann::json> hello = child->receive();
    if (!hello) return child->death();
    if (hello->contains("error")) rethrow_reported(*hello);
    child_ = std::move(child);
    return {};
  }

  const EvaluatorProcesses& how_;
  std::string stage_;
  std::int64_t retries_;
  Logger& log_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation ? fmt::format("SIG{}", abbreviation) : fmt::format("signal {}", signal);
}

Schema isolation_params() {
  using namespace param;
  return {choice("isolation", {"process", "none"}, "process")
              .help("process: evaluate in a supervised child process, so that a child network that crashes (a "
                    "segfault, an abort, the OOM killer) fails alone; none: in this process"),
          integer("retries", 2).range(0, 100).help("isolation process: times an evaluation whose process died is "
                                                   "retried on a fresh one before it is recorded as failed")};
}

std::unique_ptr<Evaluator> stage_evaluator(const StageConfig& stage, const Registry& registry, const StageContext& context) {
  if (!context.evaluator_processes || stage.params.get<std::string>("isolation") != "process")
    return stage.def->evaluator(stage, registry, context);
  return std::make_unique<IsolatedEvaluator>(*context.evaluator_processes, stage.def->name,
                                             stage.params.get<std::int64_t>("retries"), context.log);
}

struct ParentChannel::State {
  explicit State(int fd) : channel(fd) {}
  Channel channel;
};

ParentChannel::ParentChannel(int fd) : state_(std::make_unique<State>(fd)) {
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // a process the evaluator starts must not hold the parent's socket open
}
ParentChannel::~ParentChannel() = default;

void ParentChannel::serve(Evaluator& evaluator) {
  Channel& channel = state_->channel;
  if (!channel.send({{"ready", true}})) return;
  while (std::optional<nlohmann::json> message = channel.receive()) {
    const Evaluation e = evaluator.evaluate(candidate_from_json(message->at("candidate")));
    if (!channel.send({{"evaluation", to_json(e)}})) return;
  }
}

int ParentChannel::fail(std::exception_ptr error) {
  bool usage = false;
  std::string what;
  try {
    std::rethrow_exception(error);
  } catch (const UsageError& e) {
    usage = true;
    what = e.what();
  } catch (const c10::Error& e) {
    what = e.what_without_backtrace();
  } catch (const std::exception& e) {
    what = e.what();
  }
  state_->channel.send({{"error", what}, {"usage", usage}});
  return usage ? 2 : 1;
}

}  // namespace nas
