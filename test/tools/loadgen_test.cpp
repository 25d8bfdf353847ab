// dnsproxy-loadgen's pure parts: the query file (every bad line its own clear error) and the
// latency histogram (bucket bounds, percentiles).
#include <gtest/gtest.h>

#include <sstream>

#include "tools/loadgen/histogram.h"
#include "tools/loadgen/query_file.h"

namespace dnsproxy::loadgen {
namespace {

Result<std::vector<std::vector<uint8_t>>> parse(const std::string& text) {
  std::istringstream in(text);
  return parse_queries(in, "q.txt");
}

TEST(LoadgenQueryFileTest, BuildsOneQuestionPerLine) {
  auto queries = parse("# comment\n\nwww.example.test A\nhost1.example.test aaaa\nbare.test\n");
  ASSERT_TRUE(queries) << queries.error().message;
  ASSERT_EQ(queries->size(), 3u);
  const std::vector<uint8_t> expected = {0, 0,   1,   0,   0,   1,   0,   0,   0,   0,   0,   0,
                                         3, 'w', 'w', 'w', 7,   'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                         4, 't', 'e', 's', 't', 0,   0,   1,   0,   1};
  EXPECT_EQ((*queries)[0], expected);
  EXPECT_EQ((*queries)[1][(*queries)[1].size() - 3], 28);  // AAAA, case-insensitive
  EXPECT_EQ((*queries)[2][(*queries)[2].size() - 3], 1);   // no type: A
}

TEST(LoadgenQueryFileTest, TypeNumbers) {
  EXPECT_EQ(parse_qtype("TYPE65").value(), 65);
  EXPECT_EQ(parse_qtype("https").value(), 65);
  EXPECT_FALSE(parse_qtype("TYPE65536"));
  EXPECT_FALSE(parse_qtype("TYPE"));
}

TEST(LoadgenQueryFileTest, EachBadInputNamesFileAndLine) {
  struct Case {
    std::string text, message;
  };
  for (const Case& c : std::vector<Case>{
           {"ok.test A\nbad.test BOGUS\n", "q.txt:2: unknown query type 'BOGUS'"},
           {"a..b A\n", "q.txt:1: bad name 'a..b': "},
           {"ok.test A extra\n", "q.txt:1: expected 'NAME [TYPE]', found more"},
           {std::string(64, 'a') + ".test A\n", "q.txt:1: bad name"},
           {"# only a comment\n\n", "q.txt: no queries in the file"},
       }) {
    auto queries = parse(c.text);
    ASSERT_FALSE(queries) << c.text;
    EXPECT_NE(queries.error().message.find(c.message), std::string::npos)
        << queries.error().message;
  }
  auto missing = read_query_file("/nonexistent/queries.txt");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "cannot read query file /nonexistent/queries.txt");
}

TEST(LoadgenHistogramTest, BucketsCoverEveryValueOnce) {
  for (uint64_t v : {0ull, 1ull, 63ull, 64ull, 65ull, 1000ull, 123456ull, 999999999ull}) {
    const unsigned b = LatencyHistogram::bucket_of(v);
    EXPECT_LE(LatencyHistogram::lower_bound(b), v);
    EXPECT_GT(LatencyHistogram::lower_bound(b) + LatencyHistogram::width(b), v);
    EXPECT_LE(LatencyHistogram::width(b) * 32, std::max<uint64_t>(v, 64)) << v;  // <= 3 %
  }
  EXPECT_LT(LatencyHistogram::bucket_of(~uint64_t{0}), LatencyHistogram::kBuckets);
}

TEST(LoadgenHistogramTest, Percentiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0u);
  for (uint64_t v = 1; v <= 1000; ++v) h.record(v * 1000);  // 1 us .. 1 ms
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.max(), 1000000u);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.5)), 500000.0, 500000.0 * 0.03);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 990000.0, 990000.0 * 0.03);
  EXPECT_LE(h.percentile(1.0), h.max());
  EXPECT_NEAR(h.mean(), 500500.0, 1.0);
}

}  // namespace
}  // namespace dnsproxy::loadgen
