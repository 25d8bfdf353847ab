// dnsperf's query-file format for dnsproxy-loadgen: one query per line, "NAME TYPE" (TYPE a
// mnemonic such as A, AAAA, MX, TXT, or TYPEnnn; omitted: A), blank lines and lines starting with
// '#' ignored. Each query becomes the DNS message the load generator sends (ID 0, RD set, one
// question, class IN, no EDNS: what dnsperf sends without -D / -e).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dnsproxy::loadgen {

// "A" -> 1, "aaaa" -> 28, "TYPE65" -> 65. Fails for an unknown mnemonic.
[[nodiscard]] Result<uint16_t> parse_qtype(std::string_view text);

// Every query of the stream as a DNS message in wire form. Errors name `source` and the line:
// "queries.txt:3: bad name 'a..b': empty label". An input without a single query is an error.
[[nodiscard]] Result<std::vector<std::vector<uint8_t>>> parse_queries(std::istream& in,
                                                                      const std::string& source);
[[nodiscard]] Result<std::vector<std::vector<uint8_t>>> read_query_file(const std::string& path);

}  // namespace dnsproxy::loadgen
