// The simulated payment provider (include/pointex/payments.hpp): creations always succeed,
// results come after a latency, failed for a share of payments chosen by a hash of the seed and
// the payment id. One timer thread per provider.

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "pointex/payments.hpp"

namespace pointex {
namespace {

using Clock = std::chrono::steady_clock;

class SimulatedProvider final : public PaymentProvider {
 public:
  explicit SimulatedProvider(SimulatedProviderOptions options) : options_(std::move(options)) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "pointex-simpay");
      run();
    });
  }
  ~SimulatedProvider() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  const std::string& name() const override { return options_.name; }

  void attach(PaymentResultSink sink) override {
    std::lock_guard<std::mutex> lock(mutex_);
    sink_ = std::move(sink);
  }

  void create_payment(const PaymentRequest& request, PaymentCreationCallback done) override {
    const std::string id = request.payment_id;
    const PaymentStatus status = simulated_payment_fails(options_.seed, options_.failure_rate, id)
                                     ? PaymentStatus::failed
                                     : PaymentStatus::succeeded;
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Answered on the timer thread, never inside this call.
      tasks_.emplace(now, [done = std::move(done), id] { done({true, "sim-" + id, {}}); });
      if (options_.report_results) {
        tasks_.emplace(now + std::chrono::milliseconds(options_.latency_ms),
                       [this, id, status] { report(id, status); });
      }
    }
    wake_.notify_one();
  }

 private:
  void report(const std::string& payment_id, PaymentStatus status) {
    PaymentResultSink sink;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sink = sink_;
    }
    if (sink) sink(payment_id, status);
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      if (tasks_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto due = tasks_.begin()->first;
      if (Clock::now() < due) {
        wake_.wait_until(lock, due);
        continue;
      }
      std::function<void()> task = std::move(tasks_.begin()->second);
      tasks_.erase(tasks_.begin());
      lock.unlock();
      task();
      lock.lock();
    }
  }

  const SimulatedProviderOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  /// Due time -> what to do (equal times in the order they were added).
  std::multimap<Clock::time_point, std::function<void()>> tasks_;
  PaymentResultSink sink_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

std::shared_ptr<PaymentProvider> make_simulated_provider(SimulatedProviderOptions options) {
  return std::make_shared<SimulatedProvider>(std::move(options));
}

}  // namespace pointex
