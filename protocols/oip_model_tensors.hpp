#pragma once

// The Open Inference Protocol's view of a model's one input and one output,
// shared by its two wire forms: JSON and binary over HTTP
// (protocols/oip_codec.hpp) and protobuf messages over gRPC (grpc/). Each form
// finds the input's name, shape, datatype and elements; these functions check
// them against the model and build the batch, and turn a reply's output into
// its binary form. Pure functions; errors are api_error naming `field`.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/payloads.hpp"
#include "protocols/codec_support.hpp"
#include "protocols/oip_tensor_data.hpp"

namespace actorserve {

/// The batch size of an input of `shape` for the model's input: the shape
/// must be [N, ...input.shape] ([N] for images) with 0 < N <= max_instances.
size_t oip_batch_size(const std::vector<int64_t>& shape, const input_spec& input,
                      const std::string& field, const request_limits& limits);

/// The datatype named `name` when the model's input takes it: BYTES for
/// image models, a numeric datatype for tensor models.
oip_datatype oip_input_datatype(std::string_view name, const input_spec& input,
                                const std::string& field);

/// A tensor model's batch of `count` rows from packed little-endian elements
/// of `type`; `bytes` must hold exactly what the shape and datatype need (else
/// invalid_input on `size_field`, where the wire form states the size).
tensor oip_numeric_batch(std::string_view bytes, oip_datatype type, size_t count,
                         const input_spec& input, const std::string& field,
                         const std::string& size_field);

/// An image model's batch, one row per encoded JPEG or PNG element.
tensor oip_image_batch(const std::vector<std::string_view>& encoded,
                       const input_spec& input, const std::string& field,
                       const request_limits& limits);

/// The classification extension: the top k of each output row as
/// "score:index[:label]", row after row; `shape` is set to [rows, k'] with
/// k' = min(k, row size).
std::vector<std::string> oip_classifications(const tensor& output, int32_t k,
                                             const model_spec& spec,
                                             std::vector<int64_t>& shape);

/// The "output" tensor of a reply in binary form: FP32 little-endian, or with
/// classification > 0 the classification strings as BYTES elements.
struct oip_binary_output {
  std::string datatype; // "FP32" or "BYTES"
  std::vector<int64_t> shape;
  std::string bytes;
};
oip_binary_output oip_output_bytes(const tensor& output, const model_spec& spec,
                                   int32_t classification);

} // namespace actorserve
