#pragma once

// Turns a predict body into one input batch and an output batch into the
// public answer (../shared/API.md, "Predict body" and "Predict answer").
// Pure functions, called on the HTTP thread; they hold no state. Validation
// failures throw api_error naming the offending field.

#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "messages/error.hpp"
#include "messages/payloads.hpp"
#include "protocols/codec_support.hpp"

namespace actorserve {

/// `parameters` of a predict body; absent keys keep these values.
struct predict_parameters {
  output_options output;  // top_k (0: the model's) and raw_output
  int64_t timeout_ms = 0; // resolved: the body's value or the default
  int32_t priority = 0;   // 1: highest; 0 (absent): the model's lowest level
};

/// A body that passed the schema check: `instances` is a non-empty array of
/// objects (at most max_instances), parameters are known and well typed.
struct predict_body {
  nlohmann::json instances;
  predict_parameters parameters;
};

/// Parses JSON and checks the schema. invalid_json for bad JSON (or nesting
/// deeper than max_json_depth), invalid_request for schema mismatches
/// (field: "instances", "instances[2]", "parameters.top_k", ...),
/// payload_too_large for too many instances.
predict_body parse_predict_body(std::string_view body, const request_limits& limits);

/// Preprocesses every instance per the model's input spec into one NCHW
/// (or [N, shape...]) float batch. Image instances need "image" (base64
/// JPEG/PNG), tensor instances "data" (nested arrays matching input.shape).
/// Errors name the instance: invalid_input "instances[3].image",
/// unsupported_media_type for non-JPEG/PNG bytes, payload_too_large for
/// images over max_image_pixels.
tensor build_input_batch(const predict_body& body, const input_spec& input,
                         const request_limits& limits);

/// The "predictions" array for `output` (one row per instance): softmax and
/// top-k with labels for classification models, `output` + `shape` for raw.
nlohmann::json format_predictions(const tensor& output, const model_spec& spec,
                                  const output_options& options);

/// The whole predict answer: {"model", "version", "predictions"}. Shared by
/// synchronous predictions and finished jobs.
nlohmann::json format_answer(const predict_reply& reply, const model_spec& spec,
                             const output_options& options);

} // namespace actorserve
