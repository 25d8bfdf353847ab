#include "tools/loadgen/query_file.h"

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

#include "dns/name_text.h"

namespace dnsproxy::loadgen {
namespace {

struct TypeName {
  std::string_view name;
  uint16_t value;
};
constexpr std::array<TypeName, 17> kTypes{{{"A", 1},
                                           {"NS", 2},
                                           {"CNAME", 5},
                                           {"SOA", 6},
                                           {"PTR", 12},
                                           {"HINFO", 13},
                                           {"MX", 15},
                                           {"TXT", 16},
                                           {"AAAA", 28},
                                           {"SRV", 33},
                                           {"NAPTR", 35},
                                           {"DS", 43},
                                           {"RRSIG", 46},
                                           {"DNSKEY", 48},
                                           {"SVCB", 64},
                                           {"HTTPS", 65},
                                           {"ANY", 255}}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

}  // namespace

Result<uint16_t> parse_qtype(std::string_view text) {
  for (const TypeName& type : kTypes)
    if (iequals(text, type.name)) return type.value;
  if (text.size() > 4 && iequals(text.substr(0, 4), "TYPE")) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    const auto [at, ec] = std::from_chars(text.data() + 4, end, value);
    if (ec == std::errc() && at == end && value <= 65535) return static_cast<uint16_t>(value);
  }
  return fail("unknown query type '", std::string(text), "' (use a mnemonic such as A or AAAA, ",
              "or TYPEnnn)");
}

Result<std::vector<std::vector<uint8_t>>> parse_queries(std::istream& in,
                                                        const std::string& source) {
  std::vector<std::vector<uint8_t>> queries;
  std::string line;
  for (unsigned number = 1; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string name, type, extra;
    if (!(fields >> name) || name[0] == '#') continue;
    fields >> type >> extra;
    const std::string where = source + ":" + std::to_string(number) + ": ";
    if (!extra.empty()) return fail(where, "expected 'NAME [TYPE]', found more: '", line, "'");
    auto qtype = parse_qtype(type.empty() ? "A" : type);
    if (!qtype) return fail(where, qtype.error().message);
    std::array<uint8_t, dns::kMaxNameWireLength> wire{};
    auto length = dns::name_from_text(name, wire);
    if (!length)
      return fail(where, "bad name '", name, "': ", std::string(dns::to_string(length.error())));
    // Header: ID 0 (set per packet), flags RD, QDCOUNT 1; then the question, class IN.
    std::vector<uint8_t> message = {0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    message.insert(message.end(), wire.begin(), wire.begin() + static_cast<long>(*length));
    message.insert(message.end(),
                   {static_cast<uint8_t>(*qtype >> 8), static_cast<uint8_t>(*qtype & 0xff), 0, 1});
    queries.push_back(std::move(message));
  }
  if (queries.empty()) return fail(source, ": no queries in the file");
  return queries;
}

Result<std::vector<std::vector<uint8_t>>> read_query_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail("cannot read query file ", path);
  return parse_queries(in, path);
}

}  // namespace dnsproxy::loadgen
