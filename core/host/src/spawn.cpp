#include "spawn.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "nas/error.hpp"

namespace nas {

pid_t spawn(const std::string& executable, std::vector<std::string> args, const SpawnOptions& options) {
  // setenv or malloc after fork can deadlock on a lock another thread held (the store's server, a
  // heartbeat): the child gets its argv and environment ready-made.
  std::vector<std::string> environment;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    if (!options.env.count(entry.substr(0, entry.find('=')))) environment.push_back(entry);
  }
  for (const auto& [key, value] : options.env)
    if (value) environment.push_back(key + "=" + *value);
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int fd = options.output.empty() ? -1 : ::open(options.output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (!options.output.empty() && fd < 0)
    throw Error(fmt::format("cannot write '{}': {}", options.output.string(), std::strerror(errno)));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw Error(fmt::format("cannot start '{}': fork: {}", executable, std::strerror(error)));
  }
  if (pid == 0) {
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // it died before the line above
    }
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execve(executable.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  if (fd >= 0) ::close(fd);
  return pid;
}

}  // namespace nas
