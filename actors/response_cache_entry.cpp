#include "actors/response_cache_entry.hpp"

#include <cstring>

namespace actorserve {

namespace {

constexpr std::string_view format_tag = "asc1";
constexpr uint64_t max_rank = 16;

template <class T> void append(std::string& out, const T* data, size_t count) {
  out.append(reinterpret_cast<const char*>(data), count * sizeof(T));
}

/// Reads `count` values of T from the front of `bytes`; false when too few.
template <class T> bool take(std::string_view& bytes, T* out, size_t count) {
  if (bytes.size() / sizeof(T) < count)
    return false;
  std::memcpy(out, bytes.data(), count * sizeof(T));
  bytes.remove_prefix(count * sizeof(T));
  return true;
}

} // namespace

std::string cache_key_text(const response_cache_key& key) {
  return key.version + ":" + key.model_identity + ":" + key.input_digest + ":" +
         key.model;
}

std::string encode_cached_output(const tensor& output) {
  std::string bytes{format_tag};
  auto rank = static_cast<uint64_t>(output.shape.size());
  append(bytes, &rank, 1);
  append(bytes, output.shape.data(), output.shape.size());
  append(bytes, output.values.data(), output.values.size());
  return bytes;
}

std::optional<tensor> decode_cached_output(std::string_view bytes) {
  if (bytes.substr(0, format_tag.size()) != format_tag)
    return std::nullopt;
  bytes.remove_prefix(format_tag.size());
  uint64_t rank = 0;
  if (!take(bytes, &rank, 1) || rank > max_rank)
    return std::nullopt;
  tensor result;
  result.shape.resize(rank);
  if (!take(bytes, result.shape.data(), rank))
    return std::nullopt;
  uint64_t elements = 1;
  for (auto dimension : result.shape) {
    if (dimension < 0 ||
        (dimension > 0 && elements > bytes.size() / static_cast<uint64_t>(dimension)))
      return std::nullopt;
    elements *= static_cast<uint64_t>(dimension);
  }
  if (bytes.size() != elements * sizeof(float))
    return std::nullopt;
  result.values.resize(elements);
  take(bytes, result.values.data(), elements);
  return result;
}

} // namespace actorserve
