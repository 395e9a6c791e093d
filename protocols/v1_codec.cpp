#include "protocols/v1_codec.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "protocols/image_decoder.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

// Longest parser message we pass on: nlohmann quotes the last token, which
// can be the whole body (an unterminated string).
constexpr size_t max_parse_message = 200;

[[noreturn]] void fail(ec code, const std::string& field, const std::string& what) {
  throw api_error{code, field.empty() ? what : field + ": " + what, field};
}

// A client's key as it appears in a field or message: at most 100 bytes,
// cut on a UTF-8 character boundary so the error body stays valid JSON.
std::string key_text(const std::string& key) {
  constexpr size_t max_key = 100;
  if (key.size() <= max_key)
    return key;
  size_t end = max_key;
  while (end > 0 && (static_cast<unsigned char>(key[end]) & 0xC0) == 0x80)
    --end;
  return key.substr(0, end) + "...";
}

std::string instance_field(size_t index) {
  return "instances[" + std::to_string(index) + "]";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0)
      text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

// Builds the DOM like nlohmann's own SAX DOM parser, but refuses to open a
// container deeper than max_depth, which stops the parse at once: a body of
// a million '[' costs max_depth steps, not a million nested arrays.
class depth_limited_builder {
public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit depth_limited_builder(size_t max_depth) : max_depth_(max_depth) {}

  bool null() { return put(nullptr) != nullptr; }
  bool boolean(bool value) { return put(value) != nullptr; }
  bool number_integer(number_integer_t value) { return put(value) != nullptr; }
  bool number_unsigned(number_unsigned_t value) { return put(value) != nullptr; }
  bool number_float(number_float_t value, const string_t&) {
    return put(value) != nullptr;
  }
  bool string(string_t& value) { return put(std::move(value)) != nullptr; }
  bool binary(binary_t& value) { return put(json::binary(std::move(value))) != nullptr; }

  bool start_object(std::size_t) { return open(json::value_t::object); }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(string_t& name) {
    slot_ = &stack_.back()->get_ref<json::object_t&>()[std::move(name)];
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& error) {
    error_ = error.what();
    return false;
  }

  json& root() { return root_; }
  bool too_deep() const { return too_deep_; }
  const std::string& error() const { return error_; }

private:
  json* put(json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      auto& elements = parent.get_ref<json::array_t&>();
      elements.push_back(std::move(value));
      return &elements.back();
    }
    *slot_ = std::move(value);
    return slot_;
  }

  bool open(json::value_t type) {
    if (stack_.size() >= max_depth_) {
      too_deep_ = true;
      return false;
    }
    stack_.push_back(put(json(type)));
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  size_t max_depth_;
  json root_;
  std::vector<json*> stack_; // open containers, innermost last
  json* slot_ = nullptr;     // the value of the object key just read
  bool too_deep_ = false;
  std::string error_;
};

json parse_json(std::string_view body, int32_t max_depth) {
  depth_limited_builder builder{static_cast<size_t>(std::max(max_depth, 0))};
  if (json::sax_parse(body.begin(), body.end(), &builder))
    return std::move(builder.root());
  if (builder.too_deep())
    fail(ec::invalid_json, "",
         "body is nested deeper than " + std::to_string(max_depth) + " levels");
  // nlohmann's messages start with "[json.exception.parse_error.101] ".
  std::string detail = builder.error();
  if (auto end = detail.find("] ");
      !detail.empty() && detail.front() == '[' && end != std::string::npos)
    detail.erase(0, end + 2);
  // The quoted token may hold invalid UTF-8 (that may be the error itself),
  // which would break the JSON error body.
  for (auto& c : detail)
    if (static_cast<unsigned char>(c) >= 0x80)
      c = '?';
  if (detail.size() > max_parse_message)
    detail = detail.substr(0, max_parse_message) + "...";
  fail(ec::invalid_json, "", "body is not valid JSON: " + detail);
}

// An integer of `value` within [min, max]; anything else fails on `field`.
int64_t integer_in_range(const json& value, int64_t min, int64_t max,
                         const std::string& field) {
  const auto range = std::to_string(min) + ".." + std::to_string(max);
  if (!value.is_number_integer())
    fail(ec::invalid_request, field, "must be an integer in " + range);
  if (value.is_number_unsigned()) {
    auto x = value.get<uint64_t>();
    if (x > static_cast<uint64_t>(max) || static_cast<int64_t>(x) < min)
      fail(ec::invalid_request, field, "must be an integer in " + range);
    return static_cast<int64_t>(x);
  }
  auto x = value.get<int64_t>();
  if (x < min || x > max)
    fail(ec::invalid_request, field, "must be an integer in " + range);
  return x;
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
    } else {
      fail(ec::invalid_request, field,
           "unknown parameter (known: top_k, raw_output, timeout_ms)");
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
  const int64_t row = int64_t{input.channels} * input.height * input.width;
  tensor batch;
  batch.shape = {static_cast<int64_t>(count), input.channels, input.height, input.width};
  batch.values.resize(static_cast<size_t>(row) * count);
  for (size_t i = 0; i < count; ++i) {
    const auto field = instance_field(i) + ".image";
    const auto& text = instances[i]["image"].get_ref<const std::string&>();
    auto bytes = decode_base64(text);
    if (!bytes)
      fail(ec::invalid_input, field, "not valid base64");
    try {
      decode_image_into(*bytes, input, limits.max_image_pixels,
                        batch.values.data() + static_cast<size_t>(row) * i);
    } catch (api_error& error) {
      fail(error.code, field, error.message);
    }
  }
  return batch;
}

// The shape `data` appears to have, following the first element of each
// level; used to explain a mismatch.
std::vector<int64_t> apparent_shape(const json& data) {
  std::vector<int64_t> shape;
  const json* level = &data;
  while (level->is_array()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty())
      break;
    level = &level->front();
  }
  return shape;
}

// "instances[0].data[1][2]": where the walk of copy_tensor is, for errors.
std::string element_path(const std::string& field, const std::vector<size_t>& indices) {
  auto path = field;
  for (auto i : indices)
    path += "[" + std::to_string(i) + "]";
  return path;
}

// Copies the leaves of `value` (at nesting indices.size() of `shape`) to
// `out` row-major. `indices` locate `value` inside the instance's data.
void copy_tensor(const json& value, const std::vector<int64_t>& shape,
                 std::vector<size_t>& indices, const std::string& field, float*& out) {
  const size_t depth = indices.size();
  if (depth == shape.size()) {
    if (!value.is_number())
      fail(ec::invalid_input, field,
           element_path(field, indices) + " must be a number, not " +
               std::string{value.type_name()});
    const auto x = static_cast<float>(value.get<double>());
    if (!std::isfinite(x))
      fail(ec::invalid_input, field,
           element_path(field, indices) + " is out of the float32 range");
    *out++ = x;
    return;
  }
  if (!value.is_array() || static_cast<int64_t>(value.size()) != shape[depth])
    fail(ec::invalid_input, field,
         element_path(field, indices) + " must be an array of " +
             std::to_string(shape[depth]) + " elements (expected shape " +
             shape_text(shape) + ")");
  indices.push_back(0);
  for (const auto& element : value.get_ref<const json::array_t&>()) {
    copy_tensor(element, shape, indices, field, out);
    ++indices.back();
  }
  indices.pop_back();
}

tensor build_tensor_batch(const json& instances, const input_spec& input) {
  const size_t count = instances.size();
  for (size_t i = 0; i < count; ++i)
    check_instance_keys(instances[i], instance_field(i), "data", "image",
                        "this model takes tensors: send \"data\" as nested arrays");
  const int64_t row = std::accumulate(input.shape.begin(), input.shape.end(), int64_t{1},
                                      std::multiplies<>{});
  tensor batch;
  batch.shape.reserve(input.shape.size() + 1);
  batch.shape.push_back(static_cast<int64_t>(count));
  batch.shape.insert(batch.shape.end(), input.shape.begin(), input.shape.end());
  batch.values.resize(static_cast<size_t>(row) * count);
  float* out = batch.values.data();
  for (size_t i = 0; i < count; ++i) {
    const auto field = instance_field(i) + ".data";
    const auto& data = instances[i]["data"];
    auto shape = apparent_shape(data);
    if (shape != input.shape)
      fail(ec::invalid_input, field,
           "expected shape " + shape_text(input.shape) + ", got " + shape_text(shape));
    std::vector<size_t> indices;
    copy_tensor(data, input.shape, indices, field, out);
  }
  return batch;
}

const std::string& label_or_index(const model_spec& spec, size_t index,
                                  std::string& scratch) {
  if (index < spec.labels.size())
    return spec.labels[index];
  scratch = std::to_string(index);
  return scratch;
}

json row_values(const float* row, int64_t size) {
  json values = json::array();
  auto& elements = values.get_ref<json::array_t&>();
  elements.reserve(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i)
    elements.emplace_back(static_cast<double>(row[i]));
  return values;
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
  const auto k = static_cast<size_t>(std::clamp<int64_t>(wanted, 1, size));
  std::vector<size_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), size_t{0});
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](size_t a, size_t b) {
                      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                    });
  std::string scratch;
  json top = json::array();
  for (size_t rank = 0; rank < k; ++rank) {
    const auto i = order[rank];
    top.push_back({{"label", label_or_index(spec, i, scratch)},
                   {"index", i},
                   {"score", scores[i]}});
  }
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
  const int64_t size = row_size(output);
  if (rows < 0 || size < 0 ||
      static_cast<uint64_t>(rows) * static_cast<uint64_t>(size) != output.values.size())
    fail(ec::internal, "",
         "model output has " + std::to_string(output.values.size()) +
             " values, which does not match its shape " + shape_text(output.shape));
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
