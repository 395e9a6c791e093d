#pragma once

// The error answer of the standard protocols (Open Inference Protocol over
// HTTP, TensorFlow Serving REST): {"error": "message"} with our contract's
// HTTP status, except that an image that is not JPEG or PNG is a bad request
// (400) there, as any other malformed input.

#include <nlohmann/json.hpp>

#include "messages/error.hpp"

namespace actorserve {

/// The HTTP status of `code` in the standard protocols.
int standard_error_status(ec code);

/// {"error": "message"}.
nlohmann::json standard_error_body(const api_error& error);

} // namespace actorserve
