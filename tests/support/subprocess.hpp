#pragma once

// `subprocess`: a program the tests run as a child process, with its stdout
// and stderr in temp files (read at any time, removed at the end), waited
// for, signalled, and killed if still running when the object goes.
// Used by the serve and wire integration tests (tests/integration/).
// Ownership: the object owns the child and its two files. Not thread-safe:
// one test thread uses it. Test code: the heap is fine here. Every wait is
// bounded in time.

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mayfly::test {

class subprocess {
public:
  /// Starts `program` with `args`, the test's environment plus `env`
  /// ("NAME=value" each).
  subprocess(const std::string& program, const std::vector<std::string>& args,
             const std::vector<std::string>& env = {}) {
    auto stem = ::testing::TempDir() + "mayfly-subprocess-"
                + std::to_string(::getpid()) + "-" + std::to_string(counter()++);
    out_path_ = stem + ".out";
    err_path_ = stem + ".err";
    // Everything the child needs is made before fork(): after it, the
    // child only calls async-signal-safe functions.
    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e)
      env_text.emplace_back(*e);
    for (auto& e : env)
      env_text.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env_text)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out >= 0)
        ::dup2(out, 1);
      if (err >= 0)
        ::dup2(err, 2);
      ::execve(program.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
  }

  ~subprocess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::remove(out_path_.c_str());
    std::remove(err_path_.c_str());
  }

  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;

  /// Waits up to `limit` for the exit; the exit status, or -1 if the child
  /// died of a signal or did not exit in time (it is killed then).
  int wait(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (alive() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
      exited_ = true;
      return -1;
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

  /// Whether the process still runs.
  bool alive() {
    if (exited_ || pid_ <= 0)
      return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      status_ = status;
    }
    return !exited_;
  }

  void signal(int sig) {
    if (pid_ > 0 && !exited_)
      ::kill(pid_, sig);
  }

  /// What the program wrote to stdout (`err`: stderr) so far.
  std::string out() const {
    return read(out_path_);
  }

  std::string err() const {
    return read(err_path_);
  }

  /// Waits up to `limit` (a sanitizer build starts slowly) until `what`
  /// appears in stdout (`in_err`: stderr); false if the program exited or
  /// the time ran out first.
  bool wait_for(const std::string& what, bool in_err = false,
                std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline && alive()) {
      if ((in_err ? err() : out()).find(what) != std::string::npos)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return (in_err ? err() : out()).find(what) != std::string::npos;
  }

private:
  static int& counter() {
    static int n = 0;
    return n;
  }

  static std::string read(const std::string& path) {
    std::ifstream f{path};
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string out_path_;
  std::string err_path_;
};

} // namespace mayfly::test
