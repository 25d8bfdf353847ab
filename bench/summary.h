// What the end-to-end benchmarks print for a set of runs: the median and the range, never a
// single best run (DESIGN.md "How performance is measured").
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace dnsproxy::bench {

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// "median (min-max)", each printed with `format` ("%.0f"); "-" for no runs.
inline std::string range_text(const std::vector<double>& values, const char* format) {
  if (values.empty()) return "-";
  char text[128];
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const std::string f = std::string(format) + " (" + format + "-" + format + ")";
  std::snprintf(text, sizeof(text), f.c_str(), median(values), *lo, *hi);
  return text;
}

}  // namespace dnsproxy::bench
