// Internals of BatchLoader: a Job (one worker's rows of one batch, being decoded) and the Pool
// of decode threads that runs jobs' row ranges in FIFO order. Shared by batch_loader*.cpp.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "owt/data/loader.h"

namespace owt {

struct BatchLoader::Job {
  int64_t epoch = 0, index = 0, rows = 0;
  int64_t numel = 0;              // floats per output row
  std::vector<int64_t> examples;  // (rows) dataset index of each row
  std::shared_ptr<HostBuffer> images;  // room for b rows; rows (rows, C, H, W) decoded here
  std::vector<int32_t> labels;         // (rows)
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::condition_variable done_cv;
  int64_t remaining = 0;          // row ranges not finished (under mu)
  std::exception_ptr failure;     // first error of any row (under mu)
};

struct BatchLoader::Pool {
  struct Task {
    std::shared_ptr<Job> job;
    int64_t begin, end;  // rows
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> tasks;
  bool stop = false;
  std::vector<std::thread> threads;
  std::mutex bad_mu;
  std::unordered_set<int64_t> bad;  // examples found unreadable

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      tasks.clear();
    }
    cv.notify_all();
    for (std::thread& t : threads) t.join();
  }
};

}  // namespace owt
