#pragma once

// The one error enum of actorserve and its mapping to the public contract
// (../shared/API.md, "Errors"): every failure, from HTTP parsing to a model
// forward call, is one of these codes, carried as a caf::error between actors
// and as an api_error inside the HTTP layer.

#include <cstdint>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace actorserve {

enum class ec : uint8_t {
  invalid_json = 1,
  invalid_request,
  invalid_input,
  unauthorized,
  forbidden,
  model_not_found,
  version_not_found,
  job_not_found,
  not_found,
  conflict,
  payload_too_large,
  header_fields_too_large,
  unsupported_media_type,
  rate_limited,
  model_loading,
  overloaded,
  unavailable,
  deadline_exceeded,
  internal,
  uri_too_long,    // request line over 8 KiB (HTTP 414)
  request_timeout, // request headers not complete in time (HTTP 408)
  cancelled,       // the client went away before its answer (HTTP 499, never sent)
};

/// The machine-readable code of the error body, e.g. "model_not_found".
std::string_view code_name(ec code);

/// The HTTP status the contract assigns to `code`.
int http_status(ec code);

/// True for the statuses that carry a Retry-After header (429, 503).
bool wants_retry_after(ec code);

std::string to_string(ec code);

/// An error as the HTTP layer reports it: code, human message and the
/// offending part of the request (`instances[3].image`), if there is one.
struct api_error {
  ec code = ec::internal;
  std::string message;
  std::string field;
};

/// Converts an error that came back from an actor. Errors of our own category
/// keep their code and message (the first string of the context); a request
/// timeout becomes deadline_exceeded; anything else from CAF is `unavailable`.
api_error to_api_error(const caf::error& err);

/// Builds a caf::error of our category whose context is `message`.
caf::error make_error(ec code, std::string message);

} // namespace actorserve

CAF_ERROR_CODE_ENUM(actorserve::ec, "actorserve")
