#pragma once

// The Open Inference Protocol (KServe v2) over HTTP: infer requests (JSON and
// the binary tensor extension) to one prepared input batch, replies to a
// body, model and server metadata, and the protocol's error statuses.
// ../shared/API.md "Standard protocols" and
// ../shared/protocols/open-inference-rest.md. Pure functions, called on the
// door's thread; malformed requests throw api_error (invalid_request,
// invalid_input, payload_too_large, ...), which standard_error_status and
// standard_error_body (protocols/standard_errors.hpp) turn into the answer.
//
// Tensors as models see them: a tensor model has one input "input" (any
// numeric datatype, converted to FP32) of shape [N, ...input.shape]; an image
// model has one input "image", BYTES of shape [N], each element one encoded
// JPEG or PNG (base64 text in JSON, raw bytes in binary). Every model has one
// output "output", FP32, its raw rows.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/error.hpp"
#include "messages/payloads.hpp"
#include "protocols/codec_support.hpp"

namespace actorserve {

/// How the client wants "output" back.
struct oip_output_options {
  bool binary = false;        // raw little-endian bytes after the JSON part
  int32_t classification = 0; // > 0: the top k per row as BYTES "score:index[:label]"
};

/// An infer request that passed every check.
struct oip_infer_request {
  std::optional<std::string> id; // echoed in the reply
  tensor input;                  // [N, ...] float32, as the v1 path builds it
  oip_output_options output;
  int64_t timeout_ms = 0; // resolved: parameters.timeout (µs, rounded up, capped
                          // at max_timeout_ms) or default_timeout_ms
  int32_t priority = 0;   // parameters.priority; 0: default, 1: highest
};

/// The value of an Inference-Header-Content-Length header: a decimal byte
/// count. invalid_request when it is not one (sign, junk, overflow).
size_t parse_inference_header_length(std::string_view value);

/// Parses an infer request body for the model `spec`. `json_length` is the
/// Inference-Header-Content-Length (nullopt: no header, the body is JSON);
/// the binary tensors after the JSON part belong, in input order, to the
/// inputs with parameters.binary_data_size. 0 (Triton's raw binary request)
/// is refused.
oip_infer_request parse_oip_infer_request(std::string_view body,
                                          std::optional<size_t> json_length,
                                          const model_spec& spec,
                                          const request_limits& limits);

/// An infer reply ready to send. With json_length set, the body is the JSON
/// part and binary outputs: send Content-Type application/octet-stream and
/// Inference-Header-Content-Length: *json_length; otherwise application/json.
struct oip_infer_reply {
  std::string body;
  std::optional<size_t> json_length;
};

/// {"model_name", "model_version", "id"?, "outputs": [{"name": "output",
/// "shape", "datatype", "data" | "parameters": {"binary_data_size"}}]}.
oip_infer_reply format_oip_infer_reply(const predict_reply& reply, const model_spec& spec,
                                       const oip_infer_request& request);

/// GET /v2/models/{m}[/versions/{v}]: name, versions, platform, inputs and
/// outputs with -1 for the batch dimension (standard_input_shape,
/// standard_output_shape).
nlohmann::json oip_model_metadata(const model_spec& spec,
                                  const std::vector<std::string>& versions);

/// GET /v2: {"name": "actorserve", "version", "extensions"}.
nlohmann::json oip_server_metadata(std::string_view server_version);

} // namespace actorserve
