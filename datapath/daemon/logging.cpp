#include "datapath/daemon/logging.h"

#include <memory>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

namespace dnsproxy::daemon {
namespace {

// %* in a pattern: the message, escaped for a JSON string (quotes, backslashes, control bytes).
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : std::string_view(message.payload.data(), message.payload.size())) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (byte < 0x20) {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 0xf]};
        out.append(escaped, escaped + sizeof escaped);
      } else {
        out.push_back(c);
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

}  // namespace

Result<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return fail("--log-format must be text or json, got '", std::string(text), "'");
}

void configure_logging(LogFormat format) {
  if (format == LogFormat::kText) {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dnsproxyd: %v");
    return;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
      R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"dnsproxyd","msg":"%*"})");
  spdlog::set_formatter(std::move(formatter));
}

LogLimiter::Decision LogLimiter::allow(std::chrono::steady_clock::time_point now) {
  if (now - window_start_ >= window_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++suppressed_;
    return {};
  }
  ++in_window_;
  const Decision decision{.log = true, .suppressed_before = suppressed_};
  suppressed_ = 0;
  return decision;
}

}  // namespace dnsproxy::daemon
