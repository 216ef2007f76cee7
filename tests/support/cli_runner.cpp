// run_process: fork/exec with pipes for stdout and stderr, and a kill after the time limit.
#include "support/cli_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace owt::test {

std::string owt_binary() { return OWT_BINARY; }

CliResult run_process(const std::vector<std::string>& args, int timeout_s) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    setpgid(0, 0);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  CliResult r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, 200) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, n);
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CliResult run_owt(const std::vector<std::string>& args, int timeout_s) {
  std::vector<std::string> full{owt_binary()};
  full.insert(full.end(), args.begin(), args.end());
  return run_process(full, timeout_s);
}

std::string tiny_model_yaml(const std::string& data_dir, int epochs, int batch,
                            const std::string& transition) {
  std::ostringstream y;
  y << "name: tiny\n"
       "input: [1, 12, 12]\n"
       "classes: 4\n"
       "data: {format: idx, path: " << data_dir << ", mean: [0.3], std: [0.3]}\n"
       "layers:\n"
       "  - {name: conv1, type: conv, filters: 8, size: 3, pad: 1}\n"
       "  - {name: relu1, type: relu}\n"
       "  - {name: pool1, type: maxpool, size: 2, stride: 2}\n"
       "  - {name: fc1, type: linear, outputs: 32, parallel: model}\n"
       "  - {name: relu2, type: relu}\n"
       "  - {name: drop1, type: dropout, rate: 0.25}\n"
       "  - {name: fc2, type: linear, outputs: 4, parallel: model}\n"
       "  - {name: loss, type: softmax_cross_entropy}\n"
       "parallel: {transition: " << transition << ", fc_update: step}\n"
       "solver: {type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1.0e-4, batch: " << batch
    << ", epochs: " << epochs << ", schedule: {type: cosine, warmup_epochs: 0}}\n";
  return y.str();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace owt::test
