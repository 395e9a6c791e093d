#include "protocols/standard_errors.hpp"

namespace actorserve {

int standard_error_status(ec code) {
  return code == ec::unsupported_media_type ? 400 : http_status(code);
}

nlohmann::json standard_error_body(const api_error& error) {
  return {{"error", error.message}};
}

} // namespace actorserve
