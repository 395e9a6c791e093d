#pragma once

// TensorFlow Serving's REST API: predict bodies in the row ("instances") and
// columnar ("inputs") formats to one prepared input batch, predictions to
// JSON, model status and metadata. ../shared/API.md "TensorFlow Serving REST"
// and ../shared/protocols/tfserving-rest.md. Pure functions, called on the
// HTTP thread; malformed requests throw api_error, answered with
// standard_error_status and standard_error_body (protocols/standard_errors.hpp).
//
// The model's one input is named "input" (tensor models: nested arrays of
// input.shape per instance) or "image" (image models: {"b64": "<base64 JPEG
// or PNG>"} per instance); its one output is "output", the raw rows.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "messages/payloads.hpp"
#include "protocols/codec_support.hpp"

namespace actorserve {

enum class tfserving_format { row, columnar };

struct tfserving_predict_request {
  tensor input; // [N, ...] float32, as the v1 path builds it
  tfserving_format format = tfserving_format::row;
};

/// Parses a :predict body. Row: {"instances": [instance, ...]}; columnar:
/// {"inputs": batch}. An instance (and the columnar batch) may also be
/// named: {"input": ...} or {"image": ...}. "signature_name", if given, must
/// be "serving_default". Both formats give the same tensor.
tfserving_predict_request parse_tfserving_predict(std::string_view body,
                                                  const model_spec& spec,
                                                  const request_limits& limits);

/// {"predictions": rows} for a row request; for a columnar one also
/// {"outputs": rows} (as TF Serving answers it): each row nested to the output's row
/// shape as the reply reports it (a scalar per row for an output of shape [N]).
nlohmann::json format_tfserving_predict(const predict_reply& reply,
                                        tfserving_format format);

/// GET /v1/models/{m}[/versions/{v}]: {"model_version_status": [{"version",
/// "state", "status": {"error_code", "error_message"}}]}, every version or
/// only `version` (version_not_found when the model has no such version).
/// loading: LOADING, available: AVAILABLE, draining: UNLOADING, failed and
/// unloaded: END (failed with error_code UNKNOWN and the reason).
nlohmann::json tfserving_model_status(const model_status& status,
                                      const std::string& version);

/// GET /v1/models/{m}[/versions/{v}]/metadata: the model spec and the
/// signature "serving_default" with its input and output (-1 for unknown
/// sizes, sizes as strings as TF Serving prints them).
nlohmann::json tfserving_model_metadata(const model_spec& spec,
                                        const std::string& version);

} // namespace actorserve
