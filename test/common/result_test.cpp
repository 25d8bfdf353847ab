#include "common/result.h"

#include <gtest/gtest.h>

namespace dnsproxy {
namespace {

Result<int> parse_port(int raw) {
  if (raw <= 0 || raw > 65535) return fail("port ", std::to_string(raw), " is out of range");
  return raw;
}

TEST(ResultTest, CarriesValueOrReadableError) {
  EXPECT_EQ(*parse_port(53), 53);
  const Result<int> bad = parse_port(70000);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "port 70000 is out of range");
}

}  // namespace
}  // namespace dnsproxy
