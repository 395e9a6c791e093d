#include "protocols/image_decoder.hpp"

#include <array>
#include <climits>
#include <cstring>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "messages/error.hpp"

namespace actorserve {

namespace {

constexpr unsigned char png_signature[] = {0x89, 0x50, 0x4E, 0x47,
                                           0x0D, 0x0A, 0x1A, 0x0A};
constexpr size_t png_signature_size = sizeof(png_signature);

unsigned char byte_at(std::string_view bytes, size_t pos) {
  return static_cast<unsigned char>(bytes[pos]);
}

uint32_t read_be32(std::string_view bytes, size_t pos) {
  return (uint32_t{byte_at(bytes, pos)} << 24) |
         (uint32_t{byte_at(bytes, pos + 1)} << 16) |
         (uint32_t{byte_at(bytes, pos + 2)} << 8) | uint32_t{byte_at(bytes, pos + 3)};
}

uint32_t read_be16(std::string_view bytes, size_t pos) {
  return (uint32_t{byte_at(bytes, pos)} << 8) | uint32_t{byte_at(bytes, pos + 1)};
}

bool has_png_signature(std::string_view bytes) {
  return bytes.size() >= png_signature_size &&
         std::memcmp(bytes.data(), png_signature, png_signature_size) == 0;
}

bool has_jpeg_signature(std::string_view bytes) {
  return bytes.size() >= 3 && byte_at(bytes, 0) == 0xFF && byte_at(bytes, 1) == 0xD8 &&
         byte_at(bytes, 2) == 0xFF;
}

// Signature, then the first chunk, which must be IHDR:
// length (4, always 13), type (4), width (4), height (4), ...
std::optional<image_size> read_png_size(std::string_view bytes) {
  constexpr size_t ihdr_length_at = png_signature_size;
  constexpr size_t ihdr_type_at = ihdr_length_at + 4;
  constexpr size_t width_at = ihdr_type_at + 4;
  constexpr size_t height_at = width_at + 4;
  if (!has_png_signature(bytes) || bytes.size() < height_at + 4)
    return std::nullopt;
  if (read_be32(bytes, ihdr_length_at) != 13 ||
      bytes.substr(ihdr_type_at, 4) != std::string_view{"IHDR", 4})
    return std::nullopt;
  return image_size{read_be32(bytes, width_at), read_be32(bytes, height_at)};
}

// SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share
// the range but are not frame headers.
bool is_start_of_frame(unsigned char marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
         marker != 0xCC;
}

// Markers without a length field: RSTn and TEM.
bool is_standalone(unsigned char marker) {
  return (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01;
}

// Walks the marker segments after SOI up to the first SOFn:
// FF <marker> <length:2> <precision:1> <height:2> <width:2> ...
std::optional<image_size> read_jpeg_size(std::string_view bytes) {
  if (!has_jpeg_signature(bytes))
    return std::nullopt;
  size_t pos = 2;
  const size_t size = bytes.size();
  while (pos < size) {
    if (byte_at(bytes, pos) != 0xFF)
      return std::nullopt; // garbage where a marker should be
    while (pos < size && byte_at(bytes, pos) == 0xFF)
      ++pos; // fill bytes
    if (pos >= size)
      return std::nullopt;
    const unsigned char marker = byte_at(bytes, pos++);
    if (is_standalone(marker))
      continue;
    // SOI again, EOI, or scan data before any frame header: no size to find.
    if (marker == 0x00 || marker == 0xD8 || marker == 0xD9 || marker == 0xDA)
      return std::nullopt;
    if (size - pos < 2)
      return std::nullopt;
    const uint32_t length = read_be16(bytes, pos); // includes the length field
    if (length < 2)
      return std::nullopt;
    if (is_start_of_frame(marker)) {
      if (length < 7 || size - pos < 7)
        return std::nullopt;
      return image_size{read_be16(bytes, pos + 5), read_be16(bytes, pos + 3)};
    }
    if (size - pos < length)
      return std::nullopt;
    pos += length;
  }
  return std::nullopt;
}

// Loads a base64 alphabet table: the 6-bit value of each character, 0x80 for
// everything else (including '=', which only the caller strips at the end).
constexpr std::array<unsigned char, 256> make_base64_table() {
  std::array<unsigned char, 256> table{};
  for (auto& entry : table)
    entry = 0x80;
  constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (unsigned char i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = i;
  return table;
}

constexpr auto base64_table = make_base64_table();

// One value per channel, tolerant of a spec that was not validated.
float channel_value(const std::vector<float>& values, int channel, float fallback) {
  if (static_cast<size_t>(channel) < values.size())
    return values[channel];
  return values.size() == 1 ? values.front() : fallback;
}

api_error image_error(ec code, std::string message) {
  return api_error{code, std::move(message), {}};
}

} // namespace

image_format sniff_image_format(std::string_view bytes) {
  if (has_png_signature(bytes))
    return image_format::png;
  if (has_jpeg_signature(bytes))
    return image_format::jpeg;
  return image_format::other;
}

std::optional<image_size> read_image_size(std::string_view bytes, image_format format) {
  switch (format) {
    case image_format::png:
      return read_png_size(bytes);
    case image_format::jpeg:
      return read_jpeg_size(bytes);
    case image_format::other:
      break;
  }
  return std::nullopt;
}

std::optional<std::string> decode_base64(std::string_view text) {
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') {
    padding = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
    if (text.size() % 4 != 0)
      return std::nullopt; // padding, when present, completes the last quad
  }
  const auto data = text.substr(0, text.size() - padding);
  const size_t tail = data.size() % 4;
  if (tail == 1)
    return std::nullopt;
  const size_t quads = data.size() / 4;

  std::string out;
  out.resize(quads * 3 + (tail == 0 ? 0 : tail - 1));
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  const auto* src = reinterpret_cast<const unsigned char*>(data.data());
  unsigned bad = 0;
  for (size_t i = 0; i < quads; ++i, src += 4, dst += 3) {
    const unsigned a = base64_table[src[0]];
    const unsigned b = base64_table[src[1]];
    const unsigned c = base64_table[src[2]];
    const unsigned d = base64_table[src[3]];
    bad |= a | b | c | d;
    const unsigned bits = (a << 18) | (b << 12) | (c << 6) | d;
    dst[0] = static_cast<unsigned char>(bits >> 16);
    dst[1] = static_cast<unsigned char>(bits >> 8);
    dst[2] = static_cast<unsigned char>(bits);
  }
  if (tail >= 2) {
    const unsigned a = base64_table[src[0]];
    const unsigned b = base64_table[src[1]];
    const unsigned c = tail == 3 ? base64_table[src[2]] : 0;
    bad |= a | b | c;
    const unsigned bits = (a << 18) | (b << 12) | (c << 6);
    dst[0] = static_cast<unsigned char>(bits >> 16);
    if (tail == 3)
      dst[1] = static_cast<unsigned char>(bits >> 8);
  }
  if (bad & 0x80)
    return std::nullopt;
  return out;
}

void decode_image_into(std::string_view bytes, const input_spec& input,
                       int64_t max_pixels, float* out) {
  const auto format = sniff_image_format(bytes);
  if (format == image_format::other)
    throw image_error(ec::unsupported_media_type, "image is not JPEG or PNG");
  const auto size = read_image_size(bytes, format);
  if (!size)
    throw image_error(ec::invalid_input,
                      std::string{"image has a malformed "} +
                          (format == image_format::png ? "PNG" : "JPEG") + " header");
  if (size->width == 0 || size->height == 0)
    throw image_error(ec::invalid_input, "image has zero width or height");
  if (size->width > max_pixels / size->height)
    throw image_error(ec::payload_too_large, "image is " + std::to_string(size->width) +
                                                 "x" + std::to_string(size->height) +
                                                 " pixels, over the limit of " +
                                                 std::to_string(max_pixels) + " pixels");
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw image_error(ec::payload_too_large, "image is larger than 2 GiB");

  const int channels = input.channels;
  const int height = input.height;
  const int width = input.width;
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0)
    throw image_error(ec::internal, "model input spec is not a valid image spec");

  // imdecode only reads the buffer; the Mat header just lends it the bytes.
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8UC1,
                        const_cast<char*>(bytes.data()));
  cv::Mat image;
  try {
    image =
        cv::imdecode(encoded, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    throw image_error(ec::invalid_input, "image could not be decoded");
  }
  if (image.empty() || image.depth() != CV_8U || image.channels() != channels)
    throw image_error(ec::invalid_input, "image could not be decoded");
  if (image.cols != width || image.rows != height) {
    cv::Mat resized;
    cv::resize(image, resized, cv::Size{width, height}, 0, 0, cv::INTER_LINEAR);
    image = std::move(resized);
  }

  // Per output channel, a table from pixel value to (p * scale - mean) / std,
  // computed with the same float operations as the reference pipeline, so the
  // result matches it exactly and the pixel loop is a lookup.
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < channels; ++c) {
    const float mean = channel_value(input.mean, c, 0.0f);
    const float std = channel_value(input.std, c, 1.0f);
    for (int p = 0; p < 256; ++p)
      lut[c][p] = (static_cast<float>(p) * input.scale - mean) / std;
  }
  // OpenCV decodes colour as BGR: output channel c reads source channel
  // 2 - c for RGB models.
  const bool swap_red_blue = channels == 3 && input.color == color_order::rgb;
  const size_t plane = static_cast<size_t>(height) * static_cast<size_t>(width);
  for (int y = 0; y < height; ++y) {
    const unsigned char* row = image.ptr<unsigned char>(y);
    for (int c = 0; c < channels; ++c) {
      const int source = swap_red_blue ? 2 - c : c;
      const float* table = lut[c].data();
      float* dst = out + c * plane + static_cast<size_t>(y) * width;
      const unsigned char* src = row + source;
      for (int x = 0; x < width; ++x, src += channels)
        dst[x] = table[*src];
    }
  }
}

} // namespace actorserve
