#pragma once

/// @file
/// `mayfly::errc` as a CAF error category.
///
/// After `#include <mayfly/actors/errors.hpp>`, `caf::error e = errc::overloaded`
/// works, errors compare equal to their enum value, and a runtime's actor
/// system renders them as "mayfly: overloaded (context)" (the runtime
/// registers the category with `add_error_category`).

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <mayfly/runtime/errc.hpp>
#include <mayfly/runtime/result.hpp>

CAF_ERROR_CODE_ENUM(mayfly::errc, "mayfly")

namespace mayfly {

/// Converts a failed `result` into a `caf::error` with the message as context.
caf::error to_caf_error(const error_info& err);

} // namespace mayfly
