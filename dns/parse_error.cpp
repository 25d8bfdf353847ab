#include "dns/parse_error.h"

namespace dnsproxy::dns {

std::string_view to_string(ParseError error) noexcept {
  const auto index = static_cast<size_t>(error);
  return index < kParseErrorCount ? counter_names(error)[index] : std::string_view("unknown");
}

}  // namespace dnsproxy::dns
