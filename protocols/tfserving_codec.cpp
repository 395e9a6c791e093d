#include "protocols/tfserving_codec.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace actorserve {

namespace {

using json = nlohmann::json;

// `value`, or what it holds under the input's name ({"input": ...}).
const json& unwrap_named(const json& value, const std::string& name,
                         const std::string& field) {
  if (!value.is_object() || !value.contains(name))
    return value;
  if (value.size() != 1)
    fail(ec::invalid_request, field, "an object here holds only \"" + name + "\"");
  return value[name];
}

// The base64 text of an image instance: {"b64": "..."}.
const std::string& image_text(const json& instance, const std::string& field) {
  const auto* text =
      instance.is_object() && instance.size() == 1 && instance.contains("b64")
          ? &instance["b64"]
          : nullptr;
  if (text == nullptr || !text->is_string())
    fail(ec::invalid_request, field,
         "an image instance is {\"b64\": \"<base64 JPEG or PNG>\"} or {\"image\": "
         "{\"b64\": ...}}");
  return text->get_ref<const std::string&>();
}

// One batch from the instances (rows) of either format, in order.
tensor batch_of(const json& instances, const std::string& field, const input_spec& input,
                const request_limits& limits) {
  if (!instances.is_array())
    fail(ec::invalid_request, field, "must be a list with one element per instance");
  if (instances.empty())
    fail(ec::invalid_request, field, "must not be empty");
  if (instances.size() > static_cast<size_t>(std::max(limits.max_instances, 0)))
    fail(ec::payload_too_large, field,
         std::to_string(instances.size()) + " instances, over the limit of " +
             std::to_string(limits.max_instances));
  const auto name = standard_input_name(input);
  auto batch = input_batch(instances.size(), input);
  const auto row = static_cast<size_t>(row_size(batch));
  for (size_t i = 0; i < instances.size(); ++i) {
    const auto instance_field = field + "[" + std::to_string(i) + "]";
    const auto& instance = unwrap_named(instances[i], name, instance_field);
    if (input.type == input_kind::image) {
      const auto bytes =
          base64_bytes(image_text(instance, instance_field), instance_field + ".b64");
      decode_image_row(bytes, input, limits, instance_field, batch, i);
    } else {
      copy_nested(instance, input.shape, instance_field, batch.values.data() + row * i);
    }
  }
  return batch;
}

// `values` nested to `shape` from dimension `dim` on.
json nested(const float*& values, const std::vector<int64_t>& shape, size_t dim) {
  if (dim == shape.size())
    return static_cast<double>(*values++);
  json level = json::array();
  for (int64_t i = 0; i < shape[dim]; ++i)
    level.push_back(nested(values, shape, dim + 1));
  return level;
}

std::string state_name(version_state state) {
  switch (state) {
    case version_state::loading:
      return "LOADING";
    case version_state::available:
      return "AVAILABLE";
    case version_state::draining:
      return "UNLOADING";
    case version_state::failed:
    case version_state::unloaded:
      break;
  }
  return "END";
}

json version_entry(const version_status& version) {
  const bool failed = version.state == version_state::failed;
  return {{"version", version.version},
          {"state", state_name(version.state)},
          {"status",
           {{"error_code", failed ? "UNKNOWN" : "OK"},
            {"error_message", failed ? version.error : ""}}}};
}

json tensor_info(const std::string& name, const std::string& dtype,
                 const std::vector<int64_t>& shape) {
  json dims = json::array();
  for (auto size : shape)
    dims.push_back({{"size", std::to_string(size)}, {"name", ""}});
  return {{"dtype", dtype},
          {"tensor_shape", {{"dim", std::move(dims)}, {"unknown_rank", false}}},
          {"name", name}};
}

} // namespace

tfserving_predict_request parse_tfserving_predict(std::string_view body,
                                                  const model_spec& spec,
                                                  const request_limits& limits) {
  const auto document = parse_json(body, limits.max_json_depth);
  if (!document.is_object())
    fail(ec::invalid_request, "", "the body must be a JSON object");
  if (auto signature = document.find("signature_name"); signature != document.end()) {
    if (!signature->is_string())
      fail(ec::invalid_request, "signature_name", "must be a string");
    if (*signature != "serving_default")
      fail(ec::invalid_request, "signature_name",
           "unknown signature '" + key_text(signature->get<std::string>()) +
               "' (the model has 'serving_default')");
  }
  const auto instances = document.find("instances");
  const auto inputs = document.find("inputs");
  const bool row = instances != document.end();
  if (row == (inputs != document.end()))
    fail(ec::invalid_request, "",
         "expecting exactly one of the 'inputs' (columnar) and 'instances' (row) keys");
  if (row)
    return {batch_of(*instances, "instances", spec.input, limits), tfserving_format::row};
  const auto& columns = unwrap_named(*inputs, standard_input_name(spec.input), "inputs");
  return {batch_of(columns, "inputs", spec.input, limits), tfserving_format::columnar};
}

json format_tfserving_predict(const predict_reply& reply, tfserving_format format) {
  checked_row_size(reply.output);
  const float* values = reply.output.values.data();
  auto rows =
      reply.output.shape.empty() ? json::array() : nested(values, reply.output.shape, 0);
  if (format == tfserving_format::row)
    return {{"predictions", std::move(rows)}};
  // TF Serving answers a columnar request under "outputs", and its clients
  // read that; our contract (API.md) promises "predictions" for both formats.
  // A columnar answer carries both, so that either kind of client reads it.
  return {{"outputs", rows}, {"predictions", rows}};
}

json tfserving_model_status(const model_status& status, const std::string& version) {
  json versions = json::array();
  for (const auto& entry : status.versions)
    if (version.empty() || entry.version == version)
      versions.push_back(version_entry(entry));
  if (versions.empty() && !version.empty())
    fail(ec::version_not_found, "",
         "model '" + status.name + "' has no version '" + version + "'");
  return {{"model_version_status", std::move(versions)}};
}

json tfserving_model_metadata(const model_spec& spec, const std::string& version) {
  const auto name = standard_input_name(spec.input);
  json signature{
      {"inputs",
       {{name, tensor_info(
                   name, spec.input.type == input_kind::image ? "DT_STRING" : "DT_FLOAT",
                   standard_input_shape(spec.input))}}},
      {"outputs",
       {{"output", tensor_info("output", "DT_FLOAT", standard_output_shape(spec))}}},
      {"method_name", "tensorflow/serving/predict"},
      {"defaults", json::object()}};
  return {
      {"model_spec", {{"name", spec.name}, {"signature_name", ""}, {"version", version}}},
      {"metadata",
       {{"signature_def",
         {{"signature_def", {{"serving_default", std::move(signature)}}}}}}}};
}

} // namespace actorserve
