#pragma once

// Image bytes to model input: format sniffing by magic bytes, a size check
// from the PNG/JPEG header before any pixel is allocated, OpenCV decode,
// bilinear resize, channel order, (p * scale - mean[c]) / std[c], CHW.
// OpenCV stays inside image_decoder.cpp. Called on the HTTP thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/model_config.hpp"

namespace actorserve {

enum class image_format { png, jpeg, other };

/// Recognises PNG and JPEG by their magic bytes.
image_format sniff_image_format(std::string_view bytes);

struct image_size {
  int64_t width = 0;
  int64_t height = 0;
};

/// Width and height from the PNG IHDR or JPEG SOFn header, without decoding;
/// nullopt when the header is missing or malformed.
std::optional<image_size> read_image_size(std::string_view bytes, image_format format);

/// Strict RFC 4648 base64 (padding optional, no whitespace inside);
/// nullopt when `text` is not base64.
std::optional<std::string> decode_base64(std::string_view text);

/// Decodes `bytes` and writes channels * height * width floats (CHW) of the
/// preprocessed image to `out`. Throws api_error (field left empty for the
/// caller to fill): unsupported_media_type unless PNG/JPEG,
/// payload_too_large over max_pixels, invalid_input when undecodable.
void decode_image_into(std::string_view bytes, const input_spec& input,
                       int64_t max_pixels, float* out);

} // namespace actorserve
