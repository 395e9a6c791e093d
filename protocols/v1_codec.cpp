#include "protocols/v1_codec.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "protocols/codec_support.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

std::string instance_field(size_t index) {
  return "instances[" + std::to_string(index) + "]";
}

predict_parameters parse_parameters(const json& parameters,
                                    const request_limits& limits) {
  predict_parameters result;
  result.timeout_ms = limits.default_timeout_ms;
  for (const auto& [name, value] : parameters.items()) {
    const auto field = "parameters." + key_text(name);
    if (name == "top_k") {
      result.output.top_k = static_cast<int32_t>(
          integer_in_range(value, 1, std::numeric_limits<int32_t>::max(), field));
    } else if (name == "raw_output") {
      if (!value.is_boolean())
        fail(ec::invalid_request, field, "must be true or false");
      result.output.raw_output = value.get<bool>();
    } else if (name == "timeout_ms") {
      result.timeout_ms = integer_in_range(value, 1, limits.max_timeout_ms, field);
    } else if (name == "priority") {
      result.priority = static_cast<int32_t>(
          integer_in_range(value, 0, std::numeric_limits<int32_t>::max(), field));
    } else {
      fail(ec::invalid_request, field,
           "unknown parameter (known: top_k, raw_output, timeout_ms, priority)");
    }
  }
  return result;
}

// Every other key of `instance` is refused; `wrong` gets a hint that the
// model takes the other kind of input.
void check_instance_keys(const json& instance, const std::string& field,
                         const std::string& expected, const std::string& wrong,
                         const std::string& hint) {
  for (const auto& item : instance.items()) {
    const auto& name = item.key();
    if (name == expected)
      continue;
    if (name == wrong)
      fail(ec::invalid_request, field + "." + name, hint);
    fail(ec::invalid_request, field + "." + key_text(name),
         "unknown key (an instance holds only \"" + expected + "\")");
  }
  if (!instance.contains(expected))
    fail(ec::invalid_request, field + "." + expected, "required");
}

tensor build_image_batch(const json& instances, const input_spec& input,
                         const request_limits& limits) {
  const size_t count = instances.size();
  // Cheap schema checks first, so a bad last instance fails before any decoding.
  for (size_t i = 0; i < count; ++i) {
    const auto field = instance_field(i);
    check_instance_keys(instances[i], field, "image", "data",
                        "this model takes images: send \"image\" with a base64 JPEG or "
                        "PNG");
    if (!instances[i]["image"].is_string())
      fail(ec::invalid_request, field + ".image", "must be a base64 string");
  }
  auto batch = input_batch(count, input);
  for (size_t i = 0; i < count; ++i) {
    const auto field = instance_field(i) + ".image";
    const auto bytes =
        base64_bytes(instances[i]["image"].get_ref<const std::string&>(), field);
    decode_image_row(bytes, input, limits, field, batch, i);
  }
  return batch;
}

tensor build_tensor_batch(const json& instances, const input_spec& input) {
  const size_t count = instances.size();
  for (size_t i = 0; i < count; ++i)
    check_instance_keys(instances[i], instance_field(i), "data", "image",
                        "this model takes tensors: send \"data\" as nested arrays");
  auto batch = input_batch(count, input);
  const auto row = static_cast<size_t>(row_size(batch));
  for (size_t i = 0; i < count; ++i)
    copy_nested(instances[i]["data"], input.shape, instance_field(i) + ".data",
                batch.values.data() + row * i);
  return batch;
}

const std::string& label_or_index(const model_spec& spec, size_t index,
                                  std::string& scratch) {
  if (index < spec.labels.size())
    return spec.labels[index];
  scratch = std::to_string(index);
  return scratch;
}

// Numerically stable softmax in double precision. A row with +inf logits
// shares the probability among them; one of only -inf is uniform.
std::vector<double> softmax(const float* row, int64_t size) {
  std::vector<double> scores(static_cast<size_t>(size));
  const double max = *std::max_element(row, row + size);
  if (std::isinf(max)) {
    const auto hits = std::count(row, row + size, static_cast<float>(max));
    for (int64_t i = 0; i < size; ++i)
      scores[i] = max < 0 || row[i] == max ? 1.0 / (max < 0 ? size : hits) : 0.0;
    return scores;
  }
  double sum = 0;
  for (int64_t i = 0; i < size; ++i)
    sum += scores[i] = std::exp(static_cast<double>(row[i]) - max);
  for (auto& score : scores)
    score /= sum;
  return scores;
}

json classify_row(const float* row, int64_t size, int64_t index, const model_spec& spec,
                  const output_options& options) {
  if (std::any_of(row, row + size, [](float x) { return std::isnan(x); }))
    fail(ec::internal, "",
         "model output row " + std::to_string(index) +
             " contains NaN; cannot rank classes");
  const auto scores = softmax(row, size);
  const int64_t wanted = options.top_k > 0 ? options.top_k : spec.output.top_k;
  std::string scratch;
  json top = json::array();
  for (auto i : top_k_order(scores, wanted))
    top.push_back({{"label", label_or_index(spec, i, scratch)},
                   {"index", i},
                   {"score", scores[i]}});
  json prediction = top.front();
  prediction["top_k"] = std::move(top);
  if (options.raw_output)
    prediction["output"] = row_values(row, size);
  return prediction;
}

} // namespace

predict_body parse_predict_body(std::string_view body, const request_limits& limits) {
  auto document = parse_json(body, limits.max_json_depth);
  if (!document.is_object())
    fail(ec::invalid_request, "",
         "body must be a JSON object, not " + std::string{document.type_name()});
  for (const auto& item : document.items())
    if (item.key() != "instances" && item.key() != "parameters")
      fail(ec::invalid_request, key_text(item.key()),
           "unknown key (a predict body holds \"instances\" and \"parameters\")");

  predict_body result;
  auto instances = document.find("instances");
  if (instances == document.end())
    fail(ec::invalid_request, "instances", "required");
  if (!instances->is_array())
    fail(ec::invalid_request, "instances", "must be an array of objects");
  if (instances->empty())
    fail(ec::invalid_request, "instances", "must not be empty");
  if (instances->size() > static_cast<size_t>(std::max(limits.max_instances, 0)))
    fail(ec::payload_too_large, "instances",
         std::to_string(instances->size()) + " instances, over the limit of " +
             std::to_string(limits.max_instances));
  for (size_t i = 0; i < instances->size(); ++i)
    if (!(*instances)[i].is_object())
      fail(ec::invalid_request, instance_field(i), "must be an object");

  auto parameters = document.find("parameters");
  if (parameters != document.end() && !parameters->is_object())
    fail(ec::invalid_request, "parameters", "must be an object");
  result.parameters = parse_parameters(
      parameters == document.end() ? json::object() : *parameters, limits);
  result.instances = std::move(*instances);
  return result;
}

tensor build_input_batch(const predict_body& body, const input_spec& input,
                         const request_limits& limits) {
  if (input.type == input_kind::image)
    return build_image_batch(body.instances, input, limits);
  return build_tensor_batch(body.instances, input);
}

json format_predictions(const tensor& output, const model_spec& spec,
                        const output_options& options) {
  json predictions = json::array();
  if (output.shape.empty())
    return predictions;
  const int64_t rows = output.shape[0];
  const int64_t size = checked_row_size(output);
  if (spec.output.type == output_kind::classification && size == 0 && rows > 0)
    fail(ec::internal, "", "model output rows are empty; cannot rank classes");
  const std::vector<int64_t> row_shape(output.shape.begin() + 1, output.shape.end());
  auto& elements = predictions.get_ref<json::array_t&>();
  elements.reserve(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = output.values.data() + r * size;
    if (spec.output.type == output_kind::classification)
      elements.push_back(classify_row(row, size, r, spec, options));
    else
      elements.push_back({{"output", row_values(row, size)}, {"shape", row_shape}});
  }
  return predictions;
}

json format_answer(const predict_reply& reply, const model_spec& spec,
                   const output_options& options) {
  return {{"model", spec.name},
          {"version", reply.version},
          {"predictions", format_predictions(reply.output, spec, options)}};
}

} // namespace actorserve
