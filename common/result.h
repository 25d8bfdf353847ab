// The project's one control-plane result type (DESIGN.md, Conventions).
//
// Cold paths (config, policy files, attaching, map mirroring) return Result<T>: a value or an
// Error that says what went wrong in words an operator can act on. Hot paths never use it: they
// return small enums so a rejection costs a branch and a counter increment, not a string.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace dnsproxy {

struct Error {
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

// `return fail("interface ", name, " not found");` reads better than building an unexpected.
template <class... Parts>
[[nodiscard]] tl::unexpected<Error> fail(Parts&&... parts) {
  std::string message;
  (message.append(std::forward<Parts>(parts)), ...);
  return tl::unexpected<Error>(Error{std::move(message)});
}

}  // namespace dnsproxy
