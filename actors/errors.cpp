#include <mayfly/actors/errors.hpp>

#include <caf/message.hpp>

namespace mayfly {

caf::error to_caf_error(const error_info& err) {
  return caf::make_error(err.code, err.message());
}

} // namespace mayfly
