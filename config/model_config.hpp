#pragma once

// The per-model `config.json` schema (../shared/API.md, "Model repository"):
// plain aggregates with the contract's defaults, parsed and validated once at
// load. The input and output specs also travel inside messages (model_spec),
// so they carry `inspect` overloads and stay plain data.

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace actorserve {

/// A config file or option that cannot be used. what() names the file and
/// the key, e.g. "models/digits/config.json: input.height: must be > 0".
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class input_kind : uint8_t { image, tensor };
enum class color_order : uint8_t { rgb, bgr };
enum class output_kind : uint8_t { raw, classification };

struct input_spec {
  input_kind type = input_kind::image;
  int32_t height = 0; // required for images
  int32_t width = 0;  // required for images
  int32_t channels = 3;
  color_order color = color_order::rgb;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean;    // one per channel after validation
  std::vector<float> std;     // one per channel after validation
  std::vector<int64_t> shape; // per-instance shape; for images {C, H, W}
};

struct output_spec {
  output_kind type = output_kind::raw;
  int32_t top_k = 5;
  std::string labels; // labels file name, relative to the model folder
};

struct batching_config {
  int32_t max_batch_size = 32;
  int64_t max_queue_delay_us = 2000;
  int32_t max_queue_size = 1024;
  int32_t priority_levels = 3; // request priorities 1 (highest) .. this (lowest, default)
  int64_t max_priority_wait_us = 1'000'000; // past this wait, taken before any priority
};

/// Forward calls (zeros) every instance runs before its version is available.
struct warmup_config {
  std::vector<int32_t> batch_sizes{1}; // one call per size, in this order
  int32_t count = 1;                   // times the sizes are run
};

/// `response_cache`: whether answers of this model are cached (see
/// actors/response_cache.hpp); the store is the server's (--cache).
struct response_cache_config {
  bool enable = false;
};

struct model_config {
  input_spec input;
  output_spec output;
  batching_config batching;
  warmup_config warmup;
  int32_t instances =
      0;               // model instances per version; 0: by the CPU budget (compute_plan)
  int32_t threads = 0; // intra-op threads of each instance; 0: by the CPU budget
  std::string default_version;            // empty: the highest version
  std::map<std::string, int32_t> traffic; // version -> weight
  response_cache_config response_cache;
};

/// Equal settings: a reload with an equal config.json changes nothing.
bool operator==(const model_config& lhs, const model_config& rhs);
bool operator!=(const model_config& lhs, const model_config& rhs);

/// Parses and validates a config.json document. `source` names the file in
/// error messages. Unknown keys and bad values throw config_error naming the
/// key. After success, image specs have `shape == {channels, height, width}`
/// and `mean`/`std` hold one value per channel.
model_config parse_model_config(const nlohmann::json& document,
                                const std::string& source);

/// Reads and parses `file`; unreadable files and malformed JSON throw
/// config_error naming the file.
model_config load_model_config(const std::filesystem::path& file);

/// Reads a labels file: one label per line, index = line number.
std::vector<std::string> load_labels(const std::filesystem::path& file);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, input_spec& x) {
  return f(x.type, x.height, x.width, x.channels, x.color, x.scale, x.mean, x.std,
           x.shape);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, output_spec& x) {
  return f(x.type, x.top_k, x.labels);
}

} // namespace actorserve
