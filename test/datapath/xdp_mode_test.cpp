// Parsing the XDP attach mode of --xdp-mode: pure, no program is loaded.
#include <gtest/gtest.h>

#include "datapath/steer_program.h"

namespace dnsproxy::datapath {
namespace {

TEST(XdpModeTest, ParsesModesAndRejectsUnknownOnes) {
  EXPECT_EQ(*parse_xdp_mode("native"), XdpMode::kNative);
  EXPECT_EQ(*parse_xdp_mode("generic"), XdpMode::kGeneric);
  EXPECT_EQ(*parse_xdp_mode("auto"), XdpMode::kAuto);
  auto offload = parse_xdp_mode("offload");
  ASSERT_FALSE(offload);
  EXPECT_NE(offload.error().message.find("unsupported XDP mode 'offload'"), std::string::npos);
}

}  // namespace
}  // namespace dnsproxy::datapath
