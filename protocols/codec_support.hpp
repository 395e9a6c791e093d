#pragma once

// What every wire-format codec shares: the request limits, the depth-limited
// JSON parser, api_error helpers that name the offending field, nested-array
// tensors, the input batch and its image rows, and output rows (shape check,
// top-k order). Pure functions, called on the thread of the door (HTTP or
// gRPC); they hold no state.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/model_config.hpp"
#include "messages/error.hpp"
#include "messages/payloads.hpp"

namespace actorserve {

struct request_limits {
  int32_t max_instances = 1024;
  int64_t max_image_pixels = 4096 * 4096;
  int64_t default_timeout_ms = 30000;
  int64_t max_timeout_ms = 300000;
  int32_t max_json_depth = 64;
};

/// Throws api_error{code, "field: what", field} ("what" alone without field).
[[noreturn]] void fail(ec code, const std::string& field, const std::string& what);

/// A client's key as it may appear in a field or message: at most 100 bytes,
/// cut on a UTF-8 character boundary so that the error body stays valid JSON.
std::string key_text(const std::string& key);

/// "[2, 3]".
std::string shape_text(const std::vector<int64_t>& shape);

/// Parses `body`; invalid_json for bad JSON or nesting deeper than max_depth
/// (refused as soon as it is reached, so a body of a million '[' is cheap).
nlohmann::json parse_json(std::string_view body, int32_t max_depth);

/// An integer of `value` within [min, max]; anything else is invalid_request
/// on `field`.
int64_t integer_in_range(const nlohmann::json& value, int64_t min, int64_t max,
                         const std::string& field);

/// A zeroed batch of `count` rows of the model's input: shape
/// [count, ...input.shape] ({C, H, W} for images).
tensor input_batch(size_t count, const input_spec& input);

/// Copies nested arrays `data` of exactly `shape` (every level checked) to
/// `out` row-major. invalid_input on `field` naming the first bad element.
void copy_nested(const nlohmann::json& data, const std::vector<int64_t>& shape,
                 const std::string& field, float* out);

/// Decodes one encoded image into row `row` of an image batch made by
/// input_batch. The image decoder's errors come back naming `field`.
void decode_image_row(std::string_view bytes, const input_spec& input,
                      const request_limits& limits, const std::string& field,
                      tensor& batch, size_t row);

/// Base64 text to bytes; invalid_input "not valid base64" on `field`.
std::string base64_bytes(std::string_view text, const std::string& field);

/// Elements per row of a model's output, after checking that its values
/// match its shape (internal error otherwise: the model broke its contract).
int64_t checked_row_size(const tensor& output);

/// Indices of the k largest of `scores` (k clamped to 1..size), highest
/// first, ties to the lower index.
std::vector<size_t> top_k_order(const std::vector<double>& scores, int64_t k);

/// `row` as a JSON array of numbers.
nlohmann::json row_values(const float* row, int64_t size);

// How the standard protocols (Open Inference, TF Serving) see a model: one
// input, one output "output".

/// The input's name: "image" for image models, "input" for tensor models.
std::string standard_input_name(const input_spec& input);

/// The input's shape with -1 for the batch: [-1, ...input.shape] for tensor
/// models, [-1] for image models (one encoded image per element).
std::vector<int64_t> standard_input_shape(const input_spec& input);

/// The output's shape as far as the spec knows it: [-1, number of labels]
/// for a classification model with labels, else [-1, -1] (the row's real
/// shape is only known from a reply).
std::vector<int64_t> standard_output_shape(const model_spec& spec);

} // namespace actorserve
