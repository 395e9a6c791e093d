#include "protocols/codec_support.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "protocols/image_decoder.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

// Longest parser message we pass on: nlohmann quotes the last token, which
// can be the whole body (an unterminated string).
constexpr size_t max_parse_message = 200;

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

} // namespace

void fail(ec code, const std::string& field, const std::string& what) {
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

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0)
      text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

json parse_json(std::string_view body, int32_t max_depth) {
  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // accept "{}\0junk"; JSON text never holds one (strings escape it).
  if (auto nul = body.find('\0'); nul != std::string_view::npos)
    fail(ec::invalid_json, "",
         "body is not valid JSON: a NUL byte at offset " + std::to_string(nul));
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

tensor input_batch(size_t count, const input_spec& input) {
  const int64_t row = std::accumulate(input.shape.begin(), input.shape.end(), int64_t{1},
                                      std::multiplies<>{});
  tensor batch;
  batch.shape.reserve(input.shape.size() + 1);
  batch.shape.push_back(static_cast<int64_t>(count));
  batch.shape.insert(batch.shape.end(), input.shape.begin(), input.shape.end());
  batch.values.resize(static_cast<size_t>(row) * count);
  return batch;
}

void copy_nested(const json& data, const std::vector<int64_t>& shape,
                 const std::string& field, float* out) {
  auto apparent = apparent_shape(data);
  if (apparent != shape)
    fail(ec::invalid_input, field,
         "expected shape " + shape_text(shape) + ", got " + shape_text(apparent));
  std::vector<size_t> indices;
  copy_tensor(data, shape, indices, field, out);
}

void decode_image_row(std::string_view bytes, const input_spec& input,
                      const request_limits& limits, const std::string& field,
                      tensor& batch, size_t row) {
  const auto row_size = batch.values.size() / static_cast<size_t>(batch.shape[0]);
  try {
    decode_image_into(bytes, input, limits.max_image_pixels,
                      batch.values.data() + row_size * row);
  } catch (api_error& error) {
    fail(error.code, field, error.message);
  }
}

std::string base64_bytes(std::string_view text, const std::string& field) {
  auto bytes = decode_base64(text);
  if (!bytes)
    fail(ec::invalid_input, field, "not valid base64");
  return std::move(*bytes);
}

int64_t checked_row_size(const tensor& output) {
  const int64_t rows = output.shape.empty() ? 0 : output.shape[0];
  const int64_t size = output.shape.empty() ? 0 : row_size(output);
  if (rows < 0 || size < 0 ||
      static_cast<uint64_t>(rows) * static_cast<uint64_t>(size) != output.values.size())
    fail(ec::internal, "",
         "model output has " + std::to_string(output.values.size()) +
             " values, which does not match its shape " + shape_text(output.shape));
  return size;
}

std::vector<size_t> top_k_order(const std::vector<double>& scores, int64_t k) {
  const auto count =
      static_cast<size_t>(std::clamp<int64_t>(k, 1, static_cast<int64_t>(scores.size())));
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::partial_sort(order.begin(), order.begin() + count, order.end(),
                    [&](size_t a, size_t b) {
                      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                    });
  order.resize(count);
  return order;
}

json row_values(const float* row, int64_t size) {
  json values = json::array();
  auto& elements = values.get_ref<json::array_t&>();
  elements.reserve(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i)
    elements.emplace_back(static_cast<double>(row[i]));
  return values;
}

std::string standard_input_name(const input_spec& input) {
  return input.type == input_kind::image ? "image" : "input";
}

std::vector<int64_t> standard_input_shape(const input_spec& input) {
  std::vector<int64_t> shape{-1};
  if (input.type == input_kind::tensor)
    shape.insert(shape.end(), input.shape.begin(), input.shape.end());
  return shape;
}

std::vector<int64_t> standard_output_shape(const model_spec& spec) {
  if (spec.output.type == output_kind::classification && !spec.labels.empty())
    return {-1, static_cast<int64_t>(spec.labels.size())};
  return {-1, -1};
}

} // namespace actorserve
