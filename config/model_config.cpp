#include "config/model_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

namespace actorserve {
namespace {

using json = nlohmann::json;

constexpr int64_t max_image_side = 16384;
constexpr int64_t max_tensor_elements = int64_t{1} << 24;
constexpr int64_t max_top_k = std::numeric_limits<int32_t>::max();
constexpr int64_t max_traffic_weight = 1'000'000;
constexpr size_t max_version_digits = 18; // fits int64_t

/// A value as it appears in the file, shortened for an error message.
std::string quote(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

std::string range_text(int64_t min, int64_t max) {
  if (max >= std::numeric_limits<int32_t>::max()) // no useful upper bound to mention
    return min == 1 ? "an integer > 0" : "an integer >= " + std::to_string(min);
  return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

std::string join(std::initializer_list<std::string_view> words) {
  std::string text;
  for (std::string_view word : words) {
    if (!text.empty())
      text += ", ";
    text += word;
  }
  return text;
}

/// Versions are positive integers (API.md), written here in canonical
/// decimal: no sign, no leading zero, so that "2" and "02" cannot both mean 2.
bool is_version_number(std::string_view text) {
  return !text.empty() && text.size() <= max_version_digits && text.front() != '0' &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

/// The whole of `file`; a missing or unreadable file throws config_error.
std::string read_text(const std::filesystem::path& file) {
  std::error_code error;
  if (std::filesystem::is_directory(file, error))
    throw config_error(file.string() + ": cannot read: is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw config_error(file.string() + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw config_error(file.string() + ": cannot read: " + std::strerror(errno));
  return text.str();
}

enum class sign { any, positive };

/// Reads one JSON object of a config file. It knows its dotted path for
/// error messages, rejects keys it was not told about, and has typed getters
/// with range checks. Getters return nothing for an absent key, so defaults
/// stay in the aggregates: `x = in.integer<int32_t>("k", 1, 9).value_or(x)`.
/// Every failure throws config_error "<source>: <path.key>: <what is wrong>".
class object_reader {
public:
  /// Reads `object`, whose keys must be among `known_keys`.
  object_reader(const json& object, std::string source, std::string path,
                std::initializer_list<std::string_view> known_keys)
      : object_reader(object, std::move(source), std::move(path)) {
    for (const auto& item : object_.items()) {
      if (std::find(known_keys.begin(), known_keys.end(), item.key()) == known_keys.end())
        fail(item.key(), "unknown key (expected one of: " + join(known_keys) + ")");
    }
  }

  /// The member object `key`, which may only hold `known_keys`; an absent
  /// key reads as an empty object.
  object_reader object(std::string_view key,
                       std::initializer_list<std::string_view> known_keys) const {
    return object_reader(member_object(key), source_, path_of(key), known_keys);
  }

  /// The member object `key` with free-form keys (such as versions).
  object_reader free_object(std::string_view key) const {
    return object_reader(member_object(key), source_, path_of(key));
  }

  std::vector<std::string> keys() const {
    std::vector<std::string> result;
    for (const auto& item : object_.items())
      result.push_back(item.key());
    return result;
  }

  const json* find(std::string_view key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  bool has(std::string_view key) const { return find(key) != nullptr; }

  /// Fails for the first of `keys` that is present.
  void forbid(std::initializer_list<std::string_view> keys,
              const std::string& why) const {
    for (std::string_view key : keys) {
      if (has(key))
        fail(key, why);
    }
  }

  /// Fails for the first of `keys` that is absent.
  void require(std::initializer_list<std::string_view> keys,
               const std::string& why) const {
    for (std::string_view key : keys) {
      if (!has(key))
        fail(key, why);
    }
  }

  template <class Int>
  std::optional<Int> integer(std::string_view key, int64_t min, int64_t max) const {
    const json* value = find(key);
    if (value == nullptr)
      return std::nullopt;
    return static_cast<Int>(integer_value(*value, key, min, max));
  }

  std::optional<float> number(std::string_view key, sign required) const {
    const json* value = find(key);
    if (value == nullptr)
      return std::nullopt;
    return number_value(*value, key, required);
  }

  std::optional<std::vector<float>> numbers(std::string_view key, sign required) const {
    const json* value = find(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_array())
      fail(key, "must be an array of numbers, got " + quote(*value));
    std::vector<float> result;
    for (size_t i = 0; i < value->size(); ++i)
      result.push_back(number_value((*value)[i], indexed(key, i), required));
    return result;
  }

  std::optional<bool> boolean(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_boolean())
      fail(key, "must be true or false, got " + quote(*value));
    return value->get<bool>();
  }

  std::optional<std::string> string(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_string())
      fail(key, "must be a string, got " + quote(*value));
    return value->get<std::string>();
  }

  /// A string that must be one of the names in `choices`.
  template <class Enum>
  std::optional<Enum>
  choice(std::string_view key,
         std::initializer_list<std::pair<std::string_view, Enum>> choices) const {
    const json* value = find(key);
    if (value == nullptr)
      return std::nullopt;
    if (value->is_string()) {
      for (const auto& [name, result] : choices) {
        if (value->get_ref<const std::string&>() == name)
          return result;
      }
    }
    std::string names;
    for (const auto& choice : choices)
      names += (names.empty() ? "\"" : " or \"") + std::string(choice.first) + "\"";
    fail(key, "must be " + names + ", got " + quote(*value));
  }

  int64_t integer_value(const json& value, std::string_view key, int64_t min,
                        int64_t max) const {
    auto out_of_range = [&] {
      fail(key, "must be " + range_text(min, max) + ", got " + quote(value));
    };
    if (!value.is_number_integer())
      out_of_range();
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() >
            static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      out_of_range();
    auto result = value.get<int64_t>();
    if (result < min || result > max)
      out_of_range();
    return result;
  }

  [[noreturn]] void fail(std::string_view key, const std::string& what) const {
    throw config_error(source_ + ": " + path_of(key) + ": " + what);
  }

  /// Fails for the object itself rather than one of its keys.
  [[noreturn]] void fail_here(const std::string& what) const {
    throw config_error(source_ + ": " + (path_.empty() ? "" : path_ + ": ") + what);
  }

  std::string path_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  static std::string indexed(std::string_view key, size_t index) {
    return std::string(key) + "[" + std::to_string(index) + "]";
  }

private:
  /// Reads `object` with any keys.
  object_reader(const json& object, std::string source, std::string path)
      : object_(object), source_(std::move(source)), path_(std::move(path)) {
    if (!object_.is_object())
      fail_here("must be a JSON object, got " + quote(object_));
  }

  const json& member_object(std::string_view key) const {
    static const json empty = json::object();
    const json* value = find(key);
    return value == nullptr ? empty : *value;
  }

  float number_value(const json& value, std::string_view key, sign required) const {
    bool positive = required == sign::positive;
    std::string expected = positive ? "a number > 0" : "a number";
    if (!value.is_number())
      fail(key, "must be " + expected + ", got " + quote(value));
    auto result = value.get<double>();
    if (!std::isfinite(result) || std::abs(result) > std::numeric_limits<float>::max())
      fail(key, "must be a finite " + expected.substr(2) + ", got " + quote(value));
    if (positive && !(static_cast<float>(result) > 0.0f))
      fail(key, "must be " + expected + ", got " + quote(value));
    return static_cast<float>(result);
  }

  const json& object_;
  std::string source_;
  std::string path_;
};

/// `mean` or `std`: absent gives `fallback` per channel, one value is
/// broadcast to every channel, otherwise there must be one per channel.
std::vector<float> per_channel(const object_reader& in, std::string_view key,
                               sign required, float fallback, int32_t channels) {
  auto values = in.numbers(key, required).value_or(std::vector<float>{fallback});
  if (values.size() == 1)
    return std::vector<float>(static_cast<size_t>(channels), values.front());
  if (values.size() != static_cast<size_t>(channels))
    in.fail(key, "must hold 1 value or one per channel (" + std::to_string(channels) +
                     "), got " + std::to_string(values.size()));
  return values;
}

std::vector<int64_t> tensor_shape(const object_reader& in, std::string_view key) {
  const json& value = *in.find(key);
  if (!value.is_array() || value.empty())
    in.fail(key, "must be a non-empty array of dimensions, got " + quote(value));
  std::vector<int64_t> shape;
  int64_t elements = 1;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string dim_key = object_reader::indexed(key, i);
    shape.push_back(in.integer_value(value[i], dim_key, 1, max_tensor_elements));
    elements *= shape.back(); // both factors <= 2^24: no overflow
    if (elements > max_tensor_elements)
      in.fail(key, "holds more than " + std::to_string(max_tensor_elements) +
                       " elements per instance");
  }
  return shape;
}

input_spec parse_input(const object_reader& in) {
  input_spec spec;
  spec.type = in.choice<input_kind>("type", {{"image", input_kind::image},
                                             {"tensor", input_kind::tensor}})
                  .value_or(spec.type);
  if (spec.type == input_kind::tensor) {
    in.forbid({"height", "width", "channels", "color", "scale", "mean", "std"},
              "only for image models (input.type is \"tensor\")");
    in.require({"shape"}, "required for tensor models");
    spec.shape = tensor_shape(in, "shape");
    return spec;
  }
  in.forbid({"shape"}, "not allowed for image models: their shape is "
                       "{channels, height, width}");
  in.require({"height"}, "required for image models");
  spec.height = *in.integer<int32_t>("height", 1, max_image_side);
  in.require({"width"}, "required for image models");
  spec.width = *in.integer<int32_t>("width", 1, max_image_side);
  spec.channels = in.integer<int32_t>("channels", 1, 3).value_or(spec.channels);
  if (spec.channels == 2)
    in.fail("channels", "must be 1 or 3, got 2");
  spec.color = in.choice<color_order>(
                     "color", {{"rgb", color_order::rgb}, {"bgr", color_order::bgr}})
                   .value_or(spec.color);
  spec.scale = in.number("scale", sign::positive).value_or(spec.scale);
  spec.mean = per_channel(in, "mean", sign::any, 0.0f, spec.channels);
  spec.std = per_channel(in, "std", sign::positive, 1.0f, spec.channels);
  spec.shape = {spec.channels, spec.height, spec.width};
  return spec;
}

/// The labels file must stay inside the model folder.
std::string labels_path(const object_reader& in) {
  std::string name = *in.string("labels");
  std::filesystem::path path(name);
  if (name.empty())
    in.fail("labels", "must name a file, got \"\"");
  if (path.has_root_path())
    in.fail("labels", "must be relative to the model folder, got \"" + name + "\"");
  for (const auto& part : path) {
    if (part == "..")
      in.fail("labels", "must not contain \"..\", got \"" + name + "\"");
  }
  return name;
}

output_spec parse_output(const object_reader& out) {
  output_spec spec;
  spec.type =
      out.choice<output_kind>("type", {{"classification", output_kind::classification},
                                       {"raw", output_kind::raw}})
          .value_or(spec.type);
  spec.top_k = out.integer<int32_t>("top_k", 1, max_top_k).value_or(spec.top_k);
  if (out.has("labels"))
    spec.labels = labels_path(out);
  return spec;
}

batching_config parse_batching(const object_reader& in) {
  batching_config config;
  config.max_batch_size =
      in.integer<int32_t>("max_batch_size", 1, 4096).value_or(config.max_batch_size);
  config.max_queue_delay_us = in.integer<int64_t>("max_queue_delay_us", 0, 10'000'000)
                                  .value_or(config.max_queue_delay_us);
  config.max_queue_size =
      in.integer<int32_t>("max_queue_size", 1, 1'000'000).value_or(config.max_queue_size);
  config.priority_levels =
      in.integer<int32_t>("priority_levels", 1, 32).value_or(config.priority_levels);
  config.max_priority_wait_us =
      in.integer<int64_t>("max_priority_wait_us", 1, 600'000'000)
          .value_or(config.max_priority_wait_us);
  return config;
}

/// `warmup`: batch sizes from 1 to batching.max_batch_size, and a count.
warmup_config parse_warmup(const object_reader& in, const batching_config& batching) {
  warmup_config config;
  if (const json* sizes = in.find("batch_sizes")) {
    if (!sizes->is_array() || sizes->empty())
      in.fail("batch_sizes",
              "must be a non-empty array of batch sizes, got " + quote(*sizes));
    config.batch_sizes.clear();
    for (size_t i = 0; i < sizes->size(); ++i)
      config.batch_sizes.push_back(static_cast<int32_t>(
          in.integer_value((*sizes)[i], object_reader::indexed("batch_sizes", i), 1,
                           batching.max_batch_size)));
  }
  config.count = in.integer<int32_t>("count", 0, 1000).value_or(config.count);
  return config;
}

/// A version string ("2") or a JSON integer (2).
std::string parse_default_version(const object_reader& root) {
  const json* value = root.find("default_version");
  if (value == nullptr)
    return {};
  if (value->is_number_integer())
    return std::to_string(
        root.integer<int64_t>("default_version", 1, 999'999'999'999'999'999).value());
  if (!value->is_string() || !is_version_number(value->get_ref<const std::string&>()))
    root.fail("default_version",
              "must be a version number such as \"2\", got " + quote(*value));
  return value->get<std::string>();
}

std::map<std::string, int32_t> parse_traffic(const object_reader& root) {
  std::map<std::string, int32_t> traffic;
  if (!root.has("traffic"))
    return traffic;
  object_reader weights = root.free_object("traffic");
  bool any_positive = false;
  for (const std::string& version : weights.keys()) {
    if (!is_version_number(version))
      root.fail("traffic", "key \"" + version +
                               "\" must be a version number (digits, no leading zero)");
    traffic[version] = *weights.integer<int32_t>(version, 0, max_traffic_weight);
    any_positive = any_positive || traffic[version] > 0;
  }
  if (!any_positive)
    root.fail("traffic", "needs at least one version with a weight > 0");
  return traffic;
}

} // namespace

model_config parse_model_config(const json& document, const std::string& source) {
  object_reader root(document, source, "",
                     {"input", "output", "batching", "warmup", "instances", "threads",
                      "default_version", "traffic", "response_cache"});
  model_config config;
  config.input =
      parse_input(root.object("input", {"type", "height", "width", "channels", "color",
                                        "scale", "mean", "std", "shape"}));
  config.output = parse_output(root.object("output", {"type", "top_k", "labels"}));
  config.batching = parse_batching(
      root.object("batching", {"max_batch_size", "max_queue_delay_us", "max_queue_size",
                               "priority_levels", "max_priority_wait_us"}));
  config.warmup =
      parse_warmup(root.object("warmup", {"batch_sizes", "count"}), config.batching);
  config.instances = root.integer<int32_t>("instances", 1, 64).value_or(config.instances);
  config.threads = root.integer<int32_t>("threads", 1, 1024).value_or(config.threads);
  config.default_version = parse_default_version(root);
  config.traffic = parse_traffic(root);
  config.response_cache.enable = root.object("response_cache", {"enable"})
                                     .boolean("enable")
                                     .value_or(config.response_cache.enable);
  return config;
}

bool operator==(const model_config& lhs, const model_config& rhs) {
  auto fields = [](const model_config& c) {
    const auto& in = c.input;
    const auto& out = c.output;
    const auto& batching = c.batching;
    return std::tie(
        in.type, in.height, in.width, in.channels, in.color, in.scale, in.mean, in.std,
        in.shape, out.type, out.top_k, out.labels, batching.max_batch_size,
        batching.max_queue_delay_us, batching.max_queue_size, batching.priority_levels,
        batching.max_priority_wait_us, c.warmup.batch_sizes, c.warmup.count, c.instances,
        c.threads, c.default_version, c.traffic, c.response_cache.enable);
  };
  return fields(lhs) == fields(rhs);
}

bool operator!=(const model_config& lhs, const model_config& rhs) {
  return !(lhs == rhs);
}

model_config load_model_config(const std::filesystem::path& file) {
  std::string text = read_text(file);
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& e) {
    throw config_error(file.string() + ": invalid JSON: " + e.what());
  }
  return parse_model_config(document, file.string());
}

std::vector<std::string> load_labels(const std::filesystem::path& file) {
  std::string text = read_text(file);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) // UTF-8 byte order mark
    text.erase(0, 3);
  std::vector<std::string> labels;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.find('\n', begin), text.size());
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    labels.push_back(std::move(line));
    begin = end + 1;
  }
  // "a\nb\n" holds two labels; so does "a\nb\n\n": a final empty line is ignored.
  if (!labels.empty() && labels.back().empty())
    labels.pop_back();
  return labels;
}

} // namespace actorserve
