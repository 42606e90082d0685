// Runs a command line as a child process that cannot take the machine with it: its address space
// is capped (RLIMIT_AS) and it is killed when it outlives a time bound. For the tests that feed
// the real binaries hostile files.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/engine/text_files.h"

namespace emt::test {

struct BoundedRun {
  int status = 0;          // as waitpid reports it
  bool timed_out = false;  // killed with SIGKILL at the time bound
  std::string output;      // stdout and stderr, interleaved
};

struct Bounds {
  std::chrono::seconds time{60};
  rlim_t address_space = rlim_t{4} << 30;
};

// Runs argv (argv[0] a path) with its output in log; env is the whole environment.
inline BoundedRun run_bounded(std::vector<std::string> argv, std::vector<std::string> env,
                              const std::filesystem::path& log, const Bounds& bounds = {}) {
  std::vector<char*> args, envp;
  for (std::string& a : argv) args.push_back(a.data());
  for (std::string& e : env) envp.push_back(e.data());
  args.push_back(nullptr);
  envp.push_back(nullptr);
  const std::string log_path = log.string();
  const pid_t pid = ::fork();
  if (pid == 0) {      // only async-signal-safe calls until exec
#ifndef EMT_TEST_ASAN  // AddressSanitizer reserves terabytes of address space
    const rlimit cap{bounds.address_space, bounds.address_space};
    if (::setrlimit(RLIMIT_AS, &cap) != 0) ::_exit(126);
#endif
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  BoundedRun run;
  if (pid < 0) return run;
  const auto deadline = std::chrono::steady_clock::now() + bounds.time;
  while (::waitpid(pid, &run.status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &run.status, 0);
      run.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  run.output = read_text(log);
  return run;
}

}  // namespace emt::test
