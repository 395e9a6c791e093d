#include "protocols/oip_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

#include "protocols/oip_model_tensors.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

constexpr auto header_field = "Inference-Header-Content-Length";
constexpr int64_t max_int64 = std::numeric_limits<int64_t>::max();
constexpr int64_t max_int32 = std::numeric_limits<int32_t>::max();

std::string input_field(size_t index) {
  return "inputs[" + std::to_string(index) + "]";
}

const json* find_member(const json& object, const char* name) {
  auto found = object.find(name);
  return found == object.end() ? nullptr : &*found;
}

const json& object_or_empty(const json* value, const std::string& field) {
  static const json empty = json::object();
  if (value == nullptr)
    return empty;
  if (!value->is_object())
    fail(ec::invalid_request, field, "must be an object");
  return *value;
}

bool boolean_value(const json& value, const std::string& field) {
  if (!value.is_boolean())
    fail(ec::invalid_request, field, "must be true or false");
  return value.get<bool>();
}

struct request_parameters {
  bool binary_data_output = false;
  int64_t timeout_ms = 0;
  int32_t priority = 0;
};

// Known parameters are checked; others (sequence_id, custom ones) are ignored.
request_parameters parse_request_parameters(const json& parameters,
                                            const request_limits& limits) {
  request_parameters result;
  result.timeout_ms = limits.default_timeout_ms;
  if (auto* value = find_member(parameters, "binary_data_output"))
    result.binary_data_output = boolean_value(*value, "parameters.binary_data_output");
  if (auto* value = find_member(parameters, "timeout")) {
    const auto timeout_us = integer_in_range(*value, 0, max_int64, "parameters.timeout");
    if (timeout_us > 0)
      result.timeout_ms =
          std::min(timeout_us / 1000 + (timeout_us % 1000 != 0), limits.max_timeout_ms);
  }
  if (auto* value = find_member(parameters, "priority"))
    result.priority = static_cast<int32_t>(
        integer_in_range(*value, 0, max_int32, "parameters.priority"));
  return result;
}

oip_output_options parse_outputs(const json* outputs, bool binary_by_default) {
  oip_output_options result{binary_by_default, 0};
  if (outputs == nullptr)
    return result;
  if (!outputs->is_array())
    fail(ec::invalid_request, "outputs", "must be an array");
  bool seen = false;
  for (size_t i = 0; i < outputs->size(); ++i) {
    const auto field = "outputs[" + std::to_string(i) + "]";
    const auto& output = (*outputs)[i];
    const auto* name = output.is_object() ? find_member(output, "name") : nullptr;
    if (name == nullptr || !name->is_string())
      fail(ec::invalid_request, field, "must be an object with a string \"name\"");
    if (*name != "output")
      fail(ec::invalid_request, field + ".name",
           "unknown output '" + key_text(name->get<std::string>()) +
               "' (the model has 'output')");
    if (seen)
      fail(ec::invalid_request, field, "output 'output' already exists in request");
    seen = true;
    const auto& parameters =
        object_or_empty(find_member(output, "parameters"), field + ".parameters");
    if (auto* value = find_member(parameters, "binary_data"))
      result.binary = boolean_value(*value, field + ".parameters.binary_data");
    if (auto* value = find_member(parameters, "classification"))
      result.classification = static_cast<int32_t>(
          integer_in_range(*value, 0, max_int32, field + ".parameters.classification"));
  }
  return result;
}

// The index of the one input the model takes; unknown, duplicate and
// missing inputs are refused.
size_t find_model_input(const json* inputs, const input_spec& input) {
  if (inputs == nullptr)
    fail(ec::invalid_request, "inputs", "required");
  if (!inputs->is_array())
    fail(ec::invalid_request, "inputs", "must be an array");
  const auto expected = standard_input_name(input);
  std::optional<size_t> found;
  for (size_t i = 0; i < inputs->size(); ++i) {
    const auto& item = (*inputs)[i];
    const auto* name = item.is_object() ? find_member(item, "name") : nullptr;
    if (name == nullptr || !name->is_string())
      fail(ec::invalid_request, input_field(i),
           "must be an object with a string \"name\"");
    if (*name != expected)
      fail(ec::invalid_request, input_field(i) + ".name",
           "unknown input '" + key_text(name->get<std::string>()) +
               "' (this model takes '" + expected + "')");
    if (found)
      fail(ec::invalid_request, input_field(i), "input '" + expected + "' given twice");
    found = i;
  }
  if (!found)
    fail(ec::invalid_request, "inputs", "input '" + expected + "' is required");
  return *found;
}

// The batch size, after checking `shape` against the model's input.
size_t batch_size(const json* shape, const input_spec& input, const std::string& field,
                  const request_limits& limits) {
  if (shape == nullptr || !shape->is_array())
    fail(ec::invalid_request, field, "required: an array of integers");
  std::vector<int64_t> dims;
  for (size_t i = 0; i < shape->size(); ++i)
    dims.push_back(integer_in_range((*shape)[i], 0, max_int64,
                                    field + "[" + std::to_string(i) + "]"));
  return oip_batch_size(dims, input, field, limits);
}

oip_datatype model_datatype(const json* datatype, const input_spec& input,
                            const std::string& field) {
  if (datatype == nullptr || !datatype->is_string())
    fail(ec::invalid_request, field, "required: a string such as \"FP32\"");
  return oip_input_datatype(datatype->get_ref<const std::string&>(), input, field);
}

// Where an input's values are: its JSON "data", or a chunk of the binary part.
struct input_source {
  const json* data = nullptr;
  std::string_view binary;
};

// Takes the input's binary chunk off the front of `binary` when it has
// parameters.binary_data_size; it must have that or "data", not both.
input_source input_data(const json& item, const std::string& field,
                        std::string_view& binary) {
  const auto& parameters =
      object_or_empty(find_member(item, "parameters"), field + ".parameters");
  const auto* size = find_member(parameters, "binary_data_size");
  const auto* data = find_member(item, "data");
  if ((size == nullptr) == (data == nullptr))
    fail(ec::invalid_request, field,
         "must have exactly one of \"data\" and \"parameters.binary_data_size\"");
  if (data != nullptr)
    return {data, {}};
  const auto bytes =
      integer_in_range(*size, 0, max_int64, field + ".parameters.binary_data_size");
  if (static_cast<uint64_t>(bytes) > binary.size())
    fail(ec::invalid_request, field + ".parameters.binary_data_size",
         std::to_string(bytes) + " bytes, but only " + std::to_string(binary.size()) +
             " bytes of binary data follow the JSON part (" + header_field + ")");
  input_source source{nullptr, binary.substr(0, static_cast<size_t>(bytes))};
  binary.remove_prefix(static_cast<size_t>(bytes));
  return source;
}

tensor numeric_batch(const input_source& source, oip_datatype type, size_t count,
                     const input_spec& input, const std::string& field) {
  if (source.data == nullptr)
    return oip_numeric_batch(source.binary, type, count, input, field,
                             field + ".parameters.binary_data_size");
  auto batch = input_batch(count, input);
  json_to_floats(*source.data, type, batch.values.size(), field + ".data",
                 batch.values.data());
  return batch;
}

tensor image_batch(const input_source& source, size_t count, const input_spec& input,
                   const std::string& field, const request_limits& limits) {
  if (source.data == nullptr)
    return oip_image_batch(split_bytes_elements(source.binary, count, field), input,
                           field, limits);
  const auto texts = json_bytes_elements(*source.data, count, field + ".data");
  std::vector<std::string> decoded;
  decoded.reserve(count);
  for (size_t i = 0; i < count; ++i)
    decoded.push_back(base64_bytes(texts[i], field + " element " + std::to_string(i)));
  return oip_image_batch({decoded.begin(), decoded.end()}, input, field, limits);
}

// The "output" entry; its binary bytes, if binary, are appended to `binary`.
json output_entry(const tensor& output, const model_spec& spec,
                  const oip_output_options& options, std::string& binary) {
  json entry{{"name", "output"}};
  if (options.binary) {
    auto bytes = oip_output_bytes(output, spec, options.classification);
    entry["shape"] = std::move(bytes.shape);
    entry["datatype"] = std::move(bytes.datatype);
    entry["parameters"] = {{"binary_data_size", bytes.bytes.size()}};
    binary += bytes.bytes;
    return entry;
  }
  if (options.classification > 0) {
    std::vector<int64_t> shape;
    entry["data"] = oip_classifications(output, options.classification, spec, shape);
    entry["shape"] = std::move(shape);
    entry["datatype"] = "BYTES";
    return entry;
  }
  checked_row_size(output);
  entry["shape"] = output.shape;
  entry["datatype"] = "FP32";
  entry["data"] =
      row_values(output.values.data(), static_cast<int64_t>(output.values.size()));
  return entry;
}

json tensor_metadata(const std::string& name, const std::string& datatype,
                     std::vector<int64_t> shape) {
  return {{"name", name}, {"datatype", datatype}, {"shape", std::move(shape)}};
}

} // namespace

size_t parse_inference_header_length(std::string_view value) {
  size_t length = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
  if (value.empty() || error != std::errc{} || end != value.data() + value.size())
    fail(ec::invalid_request, header_field,
         "must be a byte count, got '" + key_text(std::string{value}) + "'");
  return length;
}

oip_infer_request parse_oip_infer_request(std::string_view body,
                                          std::optional<size_t> json_length,
                                          const model_spec& spec,
                                          const request_limits& limits) {
  if (json_length == size_t{0})
    fail(ec::invalid_request, header_field,
         "0 (a raw binary request without JSON) is not supported");
  if (json_length && *json_length > body.size())
    fail(ec::invalid_request, header_field,
         std::to_string(*json_length) + " is past the end of the " +
             std::to_string(body.size()) + "-byte body");
  const auto json_part = body.substr(0, json_length.value_or(body.size()));
  auto binary = body.substr(json_part.size());
  const auto document = parse_json(json_part, limits.max_json_depth);
  if (!document.is_object())
    fail(ec::invalid_request, "", "the JSON part must be an object");

  oip_infer_request result;
  if (auto* id = find_member(document, "id")) {
    if (!id->is_string())
      fail(ec::invalid_request, "id", "must be a string");
    result.id = id->get<std::string>();
  }
  const auto parameters = parse_request_parameters(
      object_or_empty(find_member(document, "parameters"), "parameters"), limits);
  result.timeout_ms = parameters.timeout_ms;
  result.priority = parameters.priority;
  result.output =
      parse_outputs(find_member(document, "outputs"), parameters.binary_data_output);

  const auto* inputs = find_member(document, "inputs");
  const auto index = find_model_input(inputs, spec.input);
  const auto& item = (*inputs)[index];
  const auto field = input_field(index);
  const auto count =
      batch_size(find_member(item, "shape"), spec.input, field + ".shape", limits);
  const auto type =
      model_datatype(find_member(item, "datatype"), spec.input, field + ".datatype");
  const auto source = input_data(item, field, binary);
  if (!binary.empty())
    fail(ec::invalid_request, header_field,
         std::to_string(binary.size()) +
             " bytes of binary data follow the JSON part, but no input claims them");
  result.input = spec.input.type == input_kind::image
                     ? image_batch(source, count, spec.input, field, limits)
                     : numeric_batch(source, type, count, spec.input, field);
  return result;
}

oip_infer_reply format_oip_infer_reply(const predict_reply& reply, const model_spec& spec,
                                       const oip_infer_request& request) {
  json document{{"model_name", spec.name}, {"model_version", reply.version}};
  if (request.id)
    document["id"] = *request.id;
  std::string binary;
  document["outputs"] = {output_entry(reply.output, spec, request.output, binary)};
  oip_infer_reply result;
  result.body = document.dump(-1, ' ', false, json::error_handler_t::replace);
  if (request.output.binary) {
    result.json_length = result.body.size();
    result.body += binary;
  }
  return result;
}

json oip_model_metadata(const model_spec& spec,
                        const std::vector<std::string>& versions) {
  auto input = tensor_metadata(standard_input_name(spec.input),
                               spec.input.type == input_kind::image ? "BYTES" : "FP32",
                               standard_input_shape(spec.input));
  return {{"name", spec.name},
          {"versions", versions},
          {"platform", "pytorch_libtorch"},
          {"inputs", {std::move(input)}},
          {"outputs", {tensor_metadata("output", "FP32", standard_output_shape(spec))}}};
}

json oip_server_metadata(std::string_view server_version) {
  return {
      {"name", "actorserve"},
      {"version", server_version},
      {"extensions",
       {"binary_tensor_data", "classification", "model_repository", "schedule_policy"}}};
}

} // namespace actorserve
