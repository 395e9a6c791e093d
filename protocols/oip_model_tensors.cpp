#include "protocols/oip_model_tensors.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace actorserve {

namespace {

std::string score_text(float score) {
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, score);
  return std::string(buffer, error == std::errc{} ? end : buffer);
}

void append_fp32_little_endian(std::string& out, const std::vector<float>& values) {
  out.reserve(out.size() + values.size() * sizeof(float));
  for (float value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
}

} // namespace

size_t oip_batch_size(const std::vector<int64_t>& shape, const input_spec& input,
                      const std::string& field, const request_limits& limits) {
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] < 0)
      fail(ec::invalid_request, field + "[" + std::to_string(i) + "]",
           "must be an integer in 0.." + std::to_string(INT64_MAX));
  auto expected = standard_input_shape(input);
  if (shape.size() != expected.size() ||
      !std::equal(expected.begin() + 1, expected.end(), shape.begin() + 1))
    fail(ec::invalid_input, field,
         "expected " + shape_text(expected) + ", got " + shape_text(shape));
  if (shape[0] == 0)
    fail(ec::invalid_input, field, "the batch (shape[0]) must not be empty");
  if (shape[0] > limits.max_instances)
    fail(ec::payload_too_large, field,
         "a batch of " + std::to_string(shape[0]) + " is over the limit of " +
             std::to_string(limits.max_instances));
  return static_cast<size_t>(shape[0]);
}

oip_datatype oip_input_datatype(std::string_view name, const input_spec& input,
                                const std::string& field) {
  auto type = parse_oip_datatype(name);
  if (!type)
    fail(ec::invalid_request, field,
         "unknown datatype '" + key_text(std::string{name}) + "'");
  if (input.type == input_kind::image && *type != oip_datatype::bytes)
    fail(ec::invalid_input, field,
         "this model takes BYTES (encoded JPEG or PNG images), not " + std::string{name});
  if (input.type == input_kind::tensor && *type == oip_datatype::bytes)
    fail(ec::invalid_input, field, "this model takes numeric tensors, not BYTES");
  return *type;
}

tensor oip_numeric_batch(std::string_view bytes, oip_datatype type, size_t count,
                         const input_spec& input, const std::string& field,
                         const std::string& size_field) {
  auto batch = input_batch(count, input);
  const size_t elements = batch.values.size();
  const size_t expected = elements * element_bytes(type);
  if (bytes.size() != expected)
    fail(ec::invalid_input, size_field,
         std::to_string(bytes.size()) + " bytes, but its shape and datatype need " +
             std::to_string(expected));
  binary_to_floats(bytes, type, elements, field, batch.values.data());
  return batch;
}

tensor oip_image_batch(const std::vector<std::string_view>& encoded,
                       const input_spec& input, const std::string& field,
                       const request_limits& limits) {
  auto batch = input_batch(encoded.size(), input);
  for (size_t i = 0; i < encoded.size(); ++i)
    decode_image_row(encoded[i], input, limits, field + " element " + std::to_string(i),
                     batch, i);
  return batch;
}

std::vector<std::string> oip_classifications(const tensor& output, int32_t k,
                                             const model_spec& spec,
                                             std::vector<int64_t>& shape) {
  const int64_t size = checked_row_size(output);
  if (size == 0 && !output.values.empty())
    fail(ec::internal, "", "model output rows are empty; cannot classify");
  const int64_t top = std::min<int64_t>(k, size);
  const int64_t rows = output.shape.empty() ? 0 : output.shape[0];
  shape = {rows, top};
  std::vector<std::string> texts;
  texts.reserve(static_cast<size_t>(rows * top));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = output.values.data() + r * size;
    const std::vector<double> scores(row, row + size);
    for (auto i : top_k_order(scores, top)) {
      auto text = score_text(row[i]) + ":" + std::to_string(i);
      if (i < spec.labels.size())
        text += ":" + spec.labels[i];
      texts.push_back(std::move(text));
    }
  }
  return texts;
}

oip_binary_output oip_output_bytes(const tensor& output, const model_spec& spec,
                                   int32_t classification) {
  oip_binary_output result;
  if (classification > 0) {
    result.datatype = "BYTES";
    for (const auto& text :
         oip_classifications(output, classification, spec, result.shape))
      append_bytes_element(result.bytes, text);
    return result;
  }
  checked_row_size(output);
  result.datatype = "FP32";
  result.shape = output.shape;
  append_fp32_little_endian(result.bytes, output.values);
  return result;
}

} // namespace actorserve
