#pragma once
// Small helpers the benchmarks share: timing, medians and percentiles of runs, and figures
// printed readably ("1,234,567", "a / b / c"). Pure functions; thread-safe.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace dsx::bench {

using SteadyClock = std::chrono::steady_clock;

// A broken run (a count or answer that is not what was written): stops the benchmark.
[[noreturn]] inline void fail(const std::string& why) {
  throw std::runtime_error(why);
}

inline double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Nearest-rank percentile of sorted samples.
inline double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// 1234567 -> "1,234,567".
inline std::string grouped(double v) {
  auto n = static_cast<long long>(std::llround(v));
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

inline std::string grouped(uint64_t v) {
  return grouped(static_cast<double>(v));
}

// Each run's figure with printf's `fmt`, "a / b / c".
inline std::string join_runs(const std::vector<double>& v, const char* fmt) {
  std::string out;
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, fmt, v[i]);
    out += (i ? " / " : "") + std::string(buf);
  }
  return out;
}

inline std::string join_grouped(const std::vector<double>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i)
    out += (i ? " / " : "") + grouped(v[i]);
  return out;
}

}  // namespace dsx::bench
