#include "messages/error.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace actorserve {

namespace {

struct error_entry {
  std::string_view code;
  int status;
};

error_entry entry(ec code) {
  switch (code) {
    case ec::invalid_json:
      return {"invalid_json", 400};
    case ec::invalid_request:
      return {"invalid_request", 400};
    case ec::invalid_input:
      return {"invalid_input", 400};
    case ec::unauthorized:
      return {"unauthorized", 401};
    case ec::forbidden:
      return {"forbidden", 403};
    case ec::model_not_found:
      return {"model_not_found", 404};
    case ec::version_not_found:
      return {"version_not_found", 404};
    case ec::job_not_found:
      return {"job_not_found", 404};
    case ec::not_found:
      return {"not_found", 404};
    case ec::conflict:
      return {"conflict", 409};
    case ec::payload_too_large:
      return {"payload_too_large", 413};
    case ec::header_fields_too_large:
      return {"header_fields_too_large", 431};
    case ec::unsupported_media_type:
      return {"unsupported_media_type", 415};
    case ec::rate_limited:
      return {"rate_limited", 429};
    case ec::model_loading:
      return {"model_loading", 503};
    case ec::overloaded:
      return {"overloaded", 503};
    case ec::unavailable:
      return {"unavailable", 503};
    case ec::deadline_exceeded:
      return {"deadline_exceeded", 504};
    case ec::uri_too_long:
      return {"uri_too_long", 414};
    case ec::request_timeout:
      return {"request_timeout", 408};
    case ec::cancelled:
      return {"cancelled", 499}; // nginx's "client closed request"
    case ec::internal:
      break;
  }
  return {"internal", 500};
}

} // namespace

std::string_view code_name(ec code) {
  return entry(code).code;
}

int http_status(ec code) {
  return entry(code).status;
}

bool wants_retry_after(ec code) {
  auto status = http_status(code);
  return status == 429 || status == 503;
}

std::string to_string(ec code) {
  return std::string{code_name(code)};
}

api_error to_api_error(const caf::error& err) {
  if (err.category() == caf::atom("actorserve")) {
    std::string message;
    const auto& context = err.context();
    if (context.size() > 0 && context.match_element<std::string>(0))
      message = context.get_as<std::string>(0);
    return {static_cast<ec>(err.code()), std::move(message), {}};
  }
  if (err == caf::sec::request_timeout)
    return {ec::deadline_exceeded, "the deadline passed before the result", {}};
  return {ec::unavailable, "actor unavailable: " + caf::to_string(err), {}};
}

caf::error make_error(ec code, std::string message) {
  return caf::make_error(code, std::move(message));
}

} // namespace actorserve
