// children_peak_rss (getrusage), planned_peak (owt plan --json's "memory" object) and the
// wide-head model file of the memory tests.
#include "support/memory_probe.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

namespace owt::test {
namespace {

void write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = write(fd, p, n);
    if (k <= 0) _exit(3);
    p += k, n -= static_cast<size_t>(k);
  }
}

bool read_all(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t k = read(fd, p, n);
    if (k <= 0) return false;
    p += k, n -= static_cast<size_t>(k);
  }
  return true;
}

}  // namespace

MeasuredRun run_measured(const std::vector<std::string>& args, int timeout_s) {
  int fds[2];
  if (pipe(fds)) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {  // runs the command, then reports: peak, exit code, stdout, stderr
    close(fds[0]);
    const CliResult r = run_process(args, timeout_s);
    rusage u{};
    getrusage(RUSAGE_CHILDREN, &u);
    const int64_t head[4] = {static_cast<int64_t>(u.ru_maxrss) * 1024, r.exit_code,
                             static_cast<int64_t>(r.out.size()), static_cast<int64_t>(r.err.size())};
    write_all(fds[1], head, sizeof head);
    write_all(fds[1], r.out.data(), r.out.size());
    write_all(fds[1], r.err.data(), r.err.size());
    _exit(0);
  }
  close(fds[1]);
  MeasuredRun m;
  int64_t head[4] = {0, -1, 0, 0};
  if (read_all(fds[0], head, sizeof head)) {
    m.peak = head[0];
    m.result.exit_code = static_cast<int>(head[1]);
    m.result.out.resize(static_cast<size_t>(head[2]));
    m.result.err.resize(static_cast<size_t>(head[3]));
    read_all(fds[0], m.result.out.data(), m.result.out.size());
    read_all(fds[0], m.result.err.data(), m.result.err.size());
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return m;
}

int64_t planned_peak(const std::string& model, int workers, int64_t batch, int threads,
                     bool data_parallel) {
  const CliResult r = run_owt({"plan", model, "--workers", std::to_string(workers), "--batch",
                               std::to_string(batch), "--threads", std::to_string(threads), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // {"memory": {"hybrid": {... "peak": N, ...}, "data_parallel": {... "peak": N, ...}}}
  size_t at = r.out.find("\"memory\": ");
  if (at != std::string::npos) at = r.out.find(data_parallel ? "\"data_parallel\": " : "\"hybrid\": ", at);
  if (at != std::string::npos) at = r.out.find("\"peak\": ", at);
  EXPECT_NE(at, std::string::npos) << r.out;
  return at == std::string::npos ? 0 : std::stoll(r.out.substr(at + 8));
}

std::string wide_head_yaml(const std::string& data_dir, int64_t classes, int batch) {
  std::ostringstream y;
  y << "name: wide_head\n"
       "input: [1, 8, 8]\n"
       "classes: " << classes << "\n"
       "data: {format: idx, path: " << data_dir << ", mean: [0.5], std: [0.3]}\n"
       "layers:\n"
       "  - {name: fc1, type: linear, outputs: 64}\n"
       "  - {name: relu1, type: relu}\n"
       "  - {name: head, type: linear, outputs: " << classes << "}\n"
       "  - {name: loss, type: softmax_cross_entropy}\n"
       "parallel: {transition: allgather}\n"
       "solver: {type: sgd, lr: 0.01, momentum: 0.9, batch: " << batch << ", epochs: 1}\n";
  return y.str();
}

bool address_sanitizer_loaded() { return dlsym(RTLD_DEFAULT, "__asan_init") != nullptr; }

}  // namespace owt::test
