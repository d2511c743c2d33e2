// A background producer with a bounded queue: prepares the batches of steps first..end-1 in order,
// at most `depth` ahead of the consumer, so that a training step never waits for images while the
// next batch can be made in time. Producing must be a pure function of the step (ours is: every
// draw is seeded by (seed, step, index)), so prefetching changes no result, only when work happens.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "lriad/io/error.h"

namespace lriad::train {

template <class Batch>
class Prefetcher {
 public:
  using Produce = std::function<Batch(int step)>;
  // `setup` runs once on the producer thread before the first batch (e.g. to limit its threads).
  // depth 0: nothing runs in the background; take() produces on the caller's thread.
  Prefetcher(Produce produce, int first, int end, int depth, std::function<void()> setup = {})
      : produce_(std::move(produce)), next_take_(first), end_(end), depth_(depth) {
    if (depth_ > 0 && first < end) thread_ = std::thread([this, first, setup] { run(first, setup); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The batch of `step`, which must be the next one in order. Rethrows the producer's error.
  Batch take(int step) {
    if (step != next_take_ || step >= end_)
      throw Error("prefetcher: asked for step " + std::to_string(step) + ", expected " + std::to_string(next_take_));
    ++next_take_;
    const auto t0 = std::chrono::steady_clock::now();
    if (depth_ <= 0) {
      Batch b = produce_(step);
      last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return b;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty() || error_; });
    last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (queue_.empty()) std::rethrow_exception(error_);
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }
  // Seconds the last take() waited (with depth 0: the time it took to produce the batch).
  double last_wait() const { return last_wait_; }

 private:
  void run(int first, const std::function<void()>& setup) {
    try {
      if (setup) setup();
      for (int step = first; step < end_; ++step) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [this] { return stop_ || int(queue_.size()) < depth_; });
          if (stop_) return;
        }
        Batch b = produce_(step);
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(b));
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
    }
  }

  Produce produce_;
  int next_take_, end_, depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  double last_wait_ = 0;
  std::thread thread_;
};

}  // namespace lriad::train
