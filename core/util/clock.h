#pragma once
// Time comes from a Clock so that tests can move it. Timestamps in the store are
// Unix seconds (std::int64_t).

#include <chrono>
#include <cstdint>

namespace wmk::util {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual std::int64_t now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t now() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock the test sets and advances.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start = 1'700'000'000) : now_(start) {}
  std::int64_t now() const override { return now_; }
  void advance(std::chrono::seconds by) { now_ += by.count(); }
  void set(std::int64_t t) { now_ = t; }

 private:
  std::int64_t now_;
};

// The process-wide system clock.
const Clock& system_clock();

}  // namespace wmk::util
