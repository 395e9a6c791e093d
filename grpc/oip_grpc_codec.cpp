#include "grpc/oip_grpc_codec.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include "protocols/oip_model_tensors.hpp"

namespace actorserve {

namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;
using parameter_map = google::protobuf::Map<std::string, InferParameter>;

constexpr int64_t max_int32 = std::numeric_limits<int32_t>::max();

std::string input_field(int index) {
  return "inputs[" + std::to_string(index) + "]";
}

/// An integer parameter sent as int64_param or uint64_param (tritonclient
/// sends priority as uint64), within [0, max].
int64_t integer_parameter(const parameter_map& parameters, const std::string& name,
                          int64_t max, const std::string& field) {
  const auto& value = parameters.at(name);
  const auto range = "must be an integer in 0.." + std::to_string(max);
  switch (value.parameter_choice_case()) {
    case InferParameter::kInt64Param:
      if (value.int64_param() < 0 || value.int64_param() > max)
        fail(ec::invalid_request, field, range);
      return value.int64_param();
    case InferParameter::kUint64Param:
      if (value.uint64_param() > static_cast<uint64_t>(max))
        fail(ec::invalid_request, field, range);
      return static_cast<int64_t>(value.uint64_param());
    default:
      fail(ec::invalid_request, field, range);
  }
}

void parse_parameters(const ModelInferRequest& request, const request_limits& limits,
                      grpc_infer_request& result) {
  const auto& parameters = request.parameters();
  result.timeout_ms = limits.default_timeout_ms;
  if (parameters.count("timeout")) {
    const auto timeout_us = integer_parameter(
        parameters, "timeout", std::numeric_limits<int64_t>::max(), "parameters.timeout");
    if (timeout_us > 0)
      result.timeout_ms =
          std::min(timeout_us / 1000 + (timeout_us % 1000 != 0), limits.max_timeout_ms);
  }
  if (parameters.count("priority"))
    result.priority = static_cast<int32_t>(
        integer_parameter(parameters, "priority", max_int32, "parameters.priority"));
}

int32_t parse_outputs(const ModelInferRequest& request) {
  int32_t classification = 0;
  for (int i = 0; i < request.outputs_size(); ++i) {
    const auto field = "outputs[" + std::to_string(i) + "]";
    const auto& output = request.outputs(i);
    if (output.name() != "output")
      fail(ec::invalid_request, field + ".name",
           "unknown output '" + key_text(output.name()) + "' (the model has 'output')");
    if (i > 0)
      fail(ec::invalid_request, field, "output 'output' already exists in request");
    if (output.parameters().count("classification"))
      classification = static_cast<int32_t>(
          integer_parameter(output.parameters(), "classification", max_int32,
                            field + ".parameters.classification"));
  }
  return classification;
}

int find_model_input(const ModelInferRequest& request, const input_spec& input) {
  const auto expected = standard_input_name(input);
  std::optional<int> found;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& name = request.inputs(i).name();
    if (name != expected)
      fail(ec::invalid_request, input_field(i) + ".name",
           "unknown input '" + key_text(name) + "' (this model takes '" + expected +
               "')");
    if (found)
      fail(ec::invalid_request, input_field(i), "input '" + expected + "' given twice");
    found = i;
  }
  if (!found)
    fail(ec::invalid_request, "inputs", "input '" + expected + "' is required");
  return *found;
}

/// Converts the typed contents of `type` (the field the protocol assigns to
/// it; every other field must be empty) to exactly `count` floats.
void typed_contents_to_floats(const InferTensorContents& contents, oip_datatype type,
                              size_t count, const std::string& field, float* out) {
  const auto convert = [&](const auto& values, const char* name, auto element) {
    if (static_cast<size_t>(values.size()) != count)
      fail(ec::invalid_input, field + "." + name,
           "holds " + std::to_string(values.size()) +
               " elements, but the product of its shape is " + std::to_string(count));
    for (size_t i = 0; i < count; ++i)
      out[i] = element(values[static_cast<int>(i)], i);
  };
  const auto fname = field + ".contents";
  switch (type) {
    case oip_datatype::boolean:
      return convert(contents.bool_contents(), "contents.bool_contents",
                     [](bool value, size_t) { return value ? 1.0f : 0.0f; });
    case oip_datatype::int8:
    case oip_datatype::int16:
    case oip_datatype::int32:
      return convert(contents.int_contents(), "contents.int_contents",
                     [&](int32_t value, size_t i) {
                       return signed_integer_element(value, type, fname, i);
                     });
    case oip_datatype::int64:
      return convert(contents.int64_contents(), "contents.int64_contents",
                     [&](int64_t value, size_t i) {
                       return signed_integer_element(value, type, fname, i);
                     });
    case oip_datatype::uint8:
    case oip_datatype::uint16:
    case oip_datatype::uint32:
      return convert(contents.uint_contents(), "contents.uint_contents",
                     [&](uint32_t value, size_t i) {
                       return unsigned_integer_element(value, type, fname, i);
                     });
    case oip_datatype::uint64:
      return convert(contents.uint64_contents(), "contents.uint64_contents",
                     [&](uint64_t value, size_t i) {
                       return unsigned_integer_element(value, type, fname, i);
                     });
    case oip_datatype::fp32:
      return convert(
          contents.fp32_contents(), "contents.fp32_contents",
          [&](float value, size_t i) { return finite_element(value, fname, i); });
    case oip_datatype::fp64:
      return convert(
          contents.fp64_contents(), "contents.fp64_contents",
          [&](double value, size_t i) { return finite_element(value, fname, i); });
    default: // FP16, BF16 have no typed field; BYTES is not numeric
      fail(ec::invalid_input, fname,
           "this datatype must be sent in raw_input_contents, not typed contents");
  }
}

bool has_contents(const InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() ||
         c.uint_contents_size() || c.uint64_contents_size() || c.fp32_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

tensor typed_batch(const ModelInferRequest::InferInputTensor& input, oip_datatype type,
                   size_t count, const model_spec& spec, const std::string& field,
                   const request_limits& limits) {
  if (type == oip_datatype::bytes) {
    const auto& elements = input.contents().bytes_contents();
    if (static_cast<size_t>(elements.size()) != count)
      fail(ec::invalid_input, field + ".contents.bytes_contents",
           "holds " + std::to_string(elements.size()) +
               " elements, but the product of its shape is " + std::to_string(count));
    return oip_image_batch({elements.begin(), elements.end()}, spec.input, field, limits);
  }
  auto batch = input_batch(count, spec.input);
  typed_contents_to_floats(input.contents(), type, batch.values.size(), field,
                           batch.values.data());
  return batch;
}

tensor raw_batch(const std::string& raw, oip_datatype type, size_t count,
                 const model_spec& spec, const std::string& field,
                 const request_limits& limits) {
  if (type == oip_datatype::bytes)
    return oip_image_batch(split_bytes_elements(raw, count, field), spec.input, field,
                           limits);
  return oip_numeric_batch(raw, type, count, spec.input, field, field);
}

} // namespace

grpc_infer_request parse_grpc_infer_request(const ModelInferRequest& request,
                                            const model_spec& spec,
                                            const request_limits& limits) {
  grpc_infer_request result;
  parse_parameters(request, limits, result);
  result.classification = parse_outputs(request);
  const int index = find_model_input(request, spec.input);
  const auto& input = request.inputs(index);
  const auto field = input_field(index);
  const auto shape = std::vector<int64_t>(input.shape().begin(), input.shape().end());
  const auto count = oip_batch_size(shape, spec.input, field + ".shape", limits);
  const auto type = oip_input_datatype(input.datatype(), spec.input, field + ".datatype");
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && has_contents(input.contents()))
    fail(ec::invalid_request, field + ".contents",
         "contents must not be given when raw_input_contents is used");
  if (raw && request.raw_input_contents_size() != request.inputs_size())
    fail(ec::invalid_request, "raw_input_contents",
         std::to_string(request.raw_input_contents_size()) + " entries for " +
             std::to_string(request.inputs_size()) + " inputs");
  result.input =
      raw ? raw_batch(request.raw_input_contents(index), type, count, spec,
                      "raw_input_contents[" + std::to_string(index) + "]", limits)
          : typed_batch(input, type, count, spec, field, limits);
  return result;
}

void format_grpc_infer_response(const predict_reply& reply, const model_spec& spec,
                                const ModelInferRequest& request,
                                const grpc_infer_request& parsed,
                                inference::ModelInferResponse& response) {
  auto output = oip_output_bytes(reply.output, spec, parsed.classification);
  response.set_model_name(spec.name);
  response.set_model_version(reply.version);
  response.set_id(request.id());
  auto* entry = response.add_outputs();
  entry->set_name("output");
  entry->set_datatype(output.datatype);
  for (auto dim : output.shape)
    entry->add_shape(dim);
  response.add_raw_output_contents(std::move(output.bytes));
}

void format_grpc_model_metadata(const model_spec& spec,
                                const std::vector<std::string>& versions,
                                inference::ModelMetadataResponse& response) {
  response.set_name(spec.name);
  for (const auto& version : versions)
    response.add_versions(version);
  response.set_platform("pytorch_libtorch");
  auto describe = [](auto* tensor, const std::string& name, const char* datatype,
                     const std::vector<int64_t>& shape) {
    tensor->set_name(name);
    tensor->set_datatype(datatype);
    for (auto dim : shape)
      tensor->add_shape(dim);
  };
  describe(response.add_inputs(), standard_input_name(spec.input),
           spec.input.type == input_kind::image ? "BYTES" : "FP32",
           standard_input_shape(spec.input));
  describe(response.add_outputs(), "output", "FP32", standard_output_shape(spec));
}

grpc::Status grpc_status(const api_error& error) {
  switch (error.code) {
    case ec::unauthorized:
      return {grpc::StatusCode::UNAUTHENTICATED, error.message};
    case ec::forbidden:
      return {grpc::StatusCode::PERMISSION_DENIED, error.message};
    case ec::model_not_found:
    case ec::version_not_found:
    case ec::job_not_found:
    case ec::not_found:
      return {grpc::StatusCode::NOT_FOUND, error.message};
    case ec::conflict:
      return {grpc::StatusCode::FAILED_PRECONDITION, error.message};
    case ec::payload_too_large:
    case ec::header_fields_too_large:
    case ec::uri_too_long:
    case ec::rate_limited:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, error.message};
    case ec::model_loading:
    case ec::overloaded:
    case ec::unavailable:
      return {grpc::StatusCode::UNAVAILABLE, error.message};
    case ec::deadline_exceeded:
    case ec::request_timeout:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, error.message};
    case ec::cancelled:
      return {grpc::StatusCode::CANCELLED, error.message};
    case ec::internal:
      return {grpc::StatusCode::INTERNAL, error.message};
    default: // invalid_json, invalid_request, invalid_input, unsupported_media_type
      return {grpc::StatusCode::INVALID_ARGUMENT, error.message};
  }
}

} // namespace actorserve
