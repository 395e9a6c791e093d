#include "protocols/image_decoder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "messages/error.hpp"

namespace actorserve {
namespace {

std::string encode(const cv::Mat& image, const std::string& ext,
                   const std::vector<int>& params = {}) {
  std::vector<unsigned char> buffer;
  EXPECT_TRUE(cv::imencode(ext, image, buffer, params));
  return std::string(buffer.begin(), buffer.end());
}

std::string encode_jpeg(const cv::Mat& image, bool progressive = false) {
  return encode(
      image, ".jpg",
      {cv::IMWRITE_JPEG_QUALITY, 100, cv::IMWRITE_JPEG_PROGRESSIVE, progressive ? 1 : 0});
}

// 3 wide, 2 high, BGR, every channel value distinct.
cv::Mat small_bgr() {
  cv::Mat image(2, 3, CV_8UC3);
  const unsigned char values[2][3][3] = {
      {{0, 10, 255}, {20, 30, 40}, {50, 60, 70}},
      {{80, 90, 100}, {110, 120, 130}, {255, 0, 128}},
  };
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c)
        image.at<cv::Vec3b>(y, x)[c] = values[y][x][c];
  return image;
}

input_spec image_spec(int height, int width, int channels = 3,
                      color_order color = color_order::rgb) {
  input_spec spec;
  spec.type = input_kind::image;
  spec.height = height;
  spec.width = width;
  spec.channels = channels;
  spec.color = color;
  spec.mean.assign(channels, 0.0f);
  spec.std.assign(channels, 1.0f);
  spec.shape = {channels, height, width};
  return spec;
}

std::vector<float> decode(const std::string& bytes, const input_spec& spec,
                          int64_t max_pixels = 4096 * 4096) {
  std::vector<float> out(static_cast<size_t>(spec.channels) * spec.height * spec.width,
                         -999.0f);
  decode_image_into(bytes, spec, max_pixels, out.data());
  return out;
}

// The expected CHW tensor of a decoded 8-bit image: (p * scale - mean) / std,
// with output channel c taken from source channel `source[c]`.
std::vector<float> expected_chw(const cv::Mat& image, const input_spec& spec,
                                const std::vector<int>& source) {
  const int channels = spec.channels;
  std::vector<float> out(static_cast<size_t>(channels) * image.rows * image.cols);
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < image.rows; ++y)
      for (int x = 0; x < image.cols; ++x) {
        const int p = image.ptr<unsigned char>(y)[x * channels + source[c]];
        out[(c * image.rows + y) * image.cols + x] =
            (p * spec.scale - spec.mean[c]) / spec.std[c];
      }
  return out;
}

void expect_near_all(const std::vector<float>& actual,
                     const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], 1e-5) << "at " << i;
}

ec error_code_of(const std::string& bytes, const input_spec& spec, int64_t max_pixels) {
  std::vector<float> out(static_cast<size_t>(spec.channels) * spec.height * spec.width);
  try {
    decode_image_into(bytes, spec, max_pixels, out.data());
  } catch (const api_error& error) {
    EXPECT_TRUE(error.field.empty());
    EXPECT_FALSE(error.message.empty());
    return error.code;
  }
  ADD_FAILURE() << "no error";
  return ec::internal;
}

void put_be32(std::string& bytes, size_t pos, uint32_t value) {
  bytes[pos] = static_cast<char>(value >> 24);
  bytes[pos + 1] = static_cast<char>(value >> 16);
  bytes[pos + 2] = static_cast<char>(value >> 8);
  bytes[pos + 3] = static_cast<char>(value);
}

std::string bytes_of(std::initializer_list<int> values) {
  std::string bytes;
  for (int v : values)
    bytes.push_back(static_cast<char>(v));
  return bytes;
}

std::string base64(const std::string& bytes) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                 (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (bytes.size() - i == 2) {
    uint32_t v =
        (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// --- format sniffing ---------------------------------------------------------

TEST(SniffImageFormat, RecognisesPngAndJpegByMagicBytes) {
  EXPECT_EQ(sniff_image_format(encode(small_bgr(), ".png")), image_format::png);
  EXPECT_EQ(sniff_image_format(encode_jpeg(small_bgr())), image_format::jpeg);
  EXPECT_EQ(sniff_image_format(bytes_of({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})),
            image_format::png);
  EXPECT_EQ(sniff_image_format(bytes_of({0xFF, 0xD8, 0xFF})), image_format::jpeg);
}

TEST(SniffImageFormat, RejectsEverythingElse) {
  EXPECT_EQ(sniff_image_format(""), image_format::other);
  EXPECT_EQ(sniff_image_format("GIF89a\x01\x00\x01\x00"), image_format::other);
  EXPECT_EQ(sniff_image_format("BM\x3a\x00\x00\x00"), image_format::other);
  EXPECT_EQ(sniff_image_format(bytes_of({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A})),
            image_format::other); // truncated signature
  EXPECT_EQ(sniff_image_format(bytes_of({0xFF, 0xD8})), image_format::other);
  EXPECT_EQ(sniff_image_format(bytes_of({0xFF, 0xD8, 0x00})), image_format::other);
  EXPECT_EQ(sniff_image_format("{\"not\": \"an image\"}"), image_format::other);
}

// --- header sizes ------------------------------------------------------------

TEST(ReadImageSize, PngFromIhdr) {
  auto size = read_image_size(encode(small_bgr(), ".png"), image_format::png);
  ASSERT_TRUE(size);
  EXPECT_EQ(size->width, 3);
  EXPECT_EQ(size->height, 2);
}

TEST(ReadImageSize, PngLargeDimensionsAreUnsigned) {
  auto png = encode(small_bgr(), ".png");
  put_be32(png, 16, 0xFFFFFFFFu);
  put_be32(png, 20, 0x80000000u);
  auto size = read_image_size(png, image_format::png);
  ASSERT_TRUE(size);
  EXPECT_EQ(size->width, 0xFFFFFFFFll);
  EXPECT_EQ(size->height, 0x80000000ll);
}

TEST(ReadImageSize, TruncatedPngIsNullopt) {
  const auto png = encode(small_bgr(), ".png");
  for (size_t n = 0; n < 24; ++n)
    EXPECT_FALSE(read_image_size(png.substr(0, n), image_format::png)) << n;
  EXPECT_TRUE(read_image_size(png.substr(0, 24), image_format::png));
}

TEST(ReadImageSize, PngWhoseFirstChunkIsNotIhdrIsNullopt) {
  auto png = encode(small_bgr(), ".png");
  png[12] = 'I';
  png[13] = 'D';
  png[14] = 'A';
  png[15] = 'T';
  EXPECT_FALSE(read_image_size(png, image_format::png));
  png = encode(small_bgr(), ".png");
  put_be32(png, 8, 12); // IHDR is always 13 bytes long
  EXPECT_FALSE(read_image_size(png, image_format::png));
}

TEST(ReadImageSize, BaselineJpeg) {
  cv::Mat image(7, 5, CV_8UC3, cv::Scalar(10, 20, 30));
  const auto jpeg = encode_jpeg(image);
  ASSERT_NE(jpeg.find("\xFF\xC0"), std::string::npos);
  auto size = read_image_size(jpeg, image_format::jpeg);
  ASSERT_TRUE(size);
  EXPECT_EQ(size->width, 5);
  EXPECT_EQ(size->height, 7);
}

TEST(ReadImageSize, ProgressiveJpegSof2) {
  cv::Mat image(300, 41, CV_8UC3, cv::Scalar(10, 20, 30));
  const auto jpeg = encode_jpeg(image, true);
  ASSERT_NE(jpeg.find("\xFF\xC2"), std::string::npos);
  ASSERT_EQ(jpeg.find("\xFF\xC0"), std::string::npos);
  auto size = read_image_size(jpeg, image_format::jpeg);
  ASSERT_TRUE(size);
  EXPECT_EQ(size->width, 41);
  EXPECT_EQ(size->height, 300);
}

// SOI, APP0, fill bytes, a standalone RST marker, DHT (C4: not a frame
// header, though in the SOF range), then SOF2 with height 0x0123, width 0x0456.
std::string crafted_jpeg() {
  return bytes_of({0xFF, 0xD8,                                           // SOI
                   0xFF, 0xE0, 0x00, 0x06, 'J',  'F',  'I',  'F',        // APP0
                   0xFF, 0xFF, 0xFF, 0xD3,                               // fill + RST3
                   0xFF, 0xC4, 0x00, 0x07, 0xC0, 0xC0, 0xC0, 0xC0, 0xC0, // DHT
                   0xFF, 0xCC, 0x00, 0x04, 0xC2, 0x00,                   // DAC
                   0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x01, 0x23, 0x04, 0x56,
                   0x01, 0x01, 0x11, 0x00});
}

TEST(ReadImageSize, JpegMarkerWalkSkipsNonFrameSegments) {
  auto size = read_image_size(crafted_jpeg(), image_format::jpeg);
  ASSERT_TRUE(size);
  EXPECT_EQ(size->width, 0x0456);
  EXPECT_EQ(size->height, 0x0123);
}

TEST(ReadImageSize, TruncatedJpegIsNullopt) {
  const auto jpeg = crafted_jpeg();
  const auto sof = jpeg.find("\xFF\xC2");
  ASSERT_NE(sof, std::string::npos);
  // Every cut before the width's last byte loses the size.
  for (size_t n = 0; n < sof + 9; ++n)
    EXPECT_FALSE(read_image_size(jpeg.substr(0, n), image_format::jpeg)) << n;
  EXPECT_TRUE(read_image_size(jpeg.substr(0, sof + 9), image_format::jpeg));

  const auto real = encode_jpeg(cv::Mat(9, 9, CV_8UC3, cv::Scalar(1, 2, 3)));
  const auto real_sof = real.find("\xFF\xC0");
  ASSERT_NE(real_sof, std::string::npos);
  for (size_t n = 0; n < real_sof + 9; ++n)
    EXPECT_FALSE(read_image_size(real.substr(0, n), image_format::jpeg)) << n;
}

TEST(ReadImageSize, MalformedJpegIsNullopt) {
  // A segment length below 2.
  EXPECT_FALSE(read_image_size(bytes_of({0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xC0,
                                         0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01}),
                               image_format::jpeg));
  // Garbage where a marker should start.
  EXPECT_FALSE(read_image_size(bytes_of({0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12, 0xC0,
                                         0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01}),
                               image_format::jpeg));
  // EOI or SOS before any frame header.
  EXPECT_FALSE(read_image_size(bytes_of({0xFF, 0xD8, 0xFF, 0xD9}), image_format::jpeg));
  EXPECT_FALSE(read_image_size(bytes_of({0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02}),
                               image_format::jpeg));
  // A segment that claims to run past the end.
  EXPECT_FALSE(read_image_size(bytes_of({0xFF, 0xD8, 0xFF, 0xE0, 0x40, 0x00, 0x00}),
                               image_format::jpeg));
  // Only fill bytes.
  EXPECT_FALSE(
      read_image_size(bytes_of({0xFF, 0xD8, 0xFF, 0xFF, 0xFF}), image_format::jpeg));
}

TEST(ReadImageSize, WrongFormatOrOtherIsNullopt) {
  EXPECT_FALSE(read_image_size(encode(small_bgr(), ".png"), image_format::jpeg));
  EXPECT_FALSE(read_image_size(encode_jpeg(small_bgr()), image_format::png));
  EXPECT_FALSE(read_image_size(encode(small_bgr(), ".png"), image_format::other));
}

// --- decoding and preprocessing -----------------------------------------------

TEST(DecodeImageInto, PngRgbByHand) {
  auto spec = image_spec(2, 3);
  spec.mean = {0.5f, 0.5f, 0.5f};
  spec.std = {0.5f, 0.5f, 0.5f};
  const auto out = decode(encode(small_bgr(), ".png"), spec);
  auto v = [](int p) { return (p / 255.0f - 0.5f) / 0.5f; };
  // Channel 0 is red: source channel 2.
  const std::vector<float> expected = {
      1.0f,  v(40), v(70), v(100), v(130), v(128), // R
      v(10), v(30), v(60), v(90),  v(120), -1.0f,  // G
      -1.0f, v(20), v(50), v(80),  v(110), 1.0f,   // B
  };
  expect_near_all(out, expected);
}

TEST(DecodeImageInto, PngBgrKeepsOpenCvOrder) {
  auto spec = image_spec(2, 3, 3, color_order::bgr);
  const auto out = decode(encode(small_bgr(), ".png"), spec);
  auto v = [](int p) { return p / 255.0f; };
  const std::vector<float> expected = {
      v(0),   v(20), v(50), v(80),  v(110), v(255), // B
      v(10),  v(30), v(60), v(90),  v(120), v(0),   // G
      v(255), v(40), v(70), v(100), v(130), v(128), // R
  };
  expect_near_all(out, expected);
}

TEST(DecodeImageInto, PerChannelMeanStdAndScale) {
  auto spec = image_spec(2, 3);
  spec.scale = 2.0f;
  spec.mean = {10.0f, 20.0f, 30.0f};
  spec.std = {2.0f, 4.0f, 8.0f};
  const auto out = decode(encode(small_bgr(), ".png"), spec);
  // Pixel (0, 0) is B=0, G=10, R=255.
  EXPECT_NEAR(out[0], (255 * 2.0f - 10.0f) / 2.0f, 1e-5);
  EXPECT_NEAR(out[6], (10 * 2.0f - 20.0f) / 4.0f, 1e-5);
  EXPECT_NEAR(out[12], (0 * 2.0f - 30.0f) / 8.0f, 1e-5);
  expect_near_all(out, expected_chw(small_bgr(), spec, {2, 1, 0}));
}

TEST(DecodeImageInto, GrayscalePng) {
  cv::Mat gray(2, 2, CV_8UC1);
  gray.at<unsigned char>(0, 0) = 0;
  gray.at<unsigned char>(0, 1) = 51;
  gray.at<unsigned char>(1, 0) = 204;
  gray.at<unsigned char>(1, 1) = 255;
  auto spec = image_spec(2, 2, 1);
  const auto out = decode(encode(gray, ".png"), spec);
  expect_near_all(out, {0.0f, 0.2f, 0.8f, 1.0f});
}

TEST(DecodeImageInto, ColorImageIntoGrayscaleModel) {
  const auto png = encode(small_bgr(), ".png");
  auto spec = image_spec(2, 3, 1);
  const auto out = decode(png, spec);
  const cv::Mat reference = cv::imdecode(
      std::vector<unsigned char>(png.begin(), png.end()), cv::IMREAD_GRAYSCALE);
  expect_near_all(out, expected_chw(reference, spec, {0}));
}

TEST(DecodeImageInto, GrayscaleImageIntoColorModel) {
  cv::Mat gray(1, 2, CV_8UC1);
  gray.at<unsigned char>(0, 0) = 0;
  gray.at<unsigned char>(0, 1) = 255;
  const auto out = decode(encode(gray, ".png"), image_spec(1, 2));
  expect_near_all(out, {0.0f, 1.0f, 0.0f, 1.0f, 0.0f, 1.0f});
}

TEST(DecodeImageInto, JpegFlatBlock) {
  // A flat 8x8 block at quality 100 decodes to (nearly) its colour; compare
  // exactly with OpenCV's own decode of the same bytes.
  cv::Mat image(8, 8, CV_8UC3, cv::Scalar(40, 120, 200)); // B, G, R
  const auto jpeg = encode_jpeg(image);
  auto spec = image_spec(8, 8);
  const auto out = decode(jpeg, spec);
  const cv::Mat reference = cv::imdecode(
      std::vector<unsigned char>(jpeg.begin(), jpeg.end()), cv::IMREAD_COLOR);
  expect_near_all(out, expected_chw(reference, spec, {2, 1, 0}));
  EXPECT_NEAR(out[0], 200 / 255.0f, 3 / 255.0f);  // R
  EXPECT_NEAR(out[64], 120 / 255.0f, 3 / 255.0f); // G
  EXPECT_NEAR(out[128], 40 / 255.0f, 3 / 255.0f); // B
}

TEST(DecodeImageInto, ProgressiveJpegDecodes) {
  cv::Mat image(16, 16, CV_8UC1, cv::Scalar(77));
  const auto jpeg = encode_jpeg(image, true);
  auto spec = image_spec(16, 16, 1);
  const auto out = decode(jpeg, spec);
  for (float x : out)
    EXPECT_NEAR(x, 77 / 255.0f, 2 / 255.0f);
}

TEST(DecodeImageInto, BilinearResizeMatchesOpenCv) {
  cv::Mat gray(2, 2, CV_8UC1);
  gray.at<unsigned char>(0, 0) = 0;
  gray.at<unsigned char>(0, 1) = 100;
  gray.at<unsigned char>(1, 0) = 200;
  gray.at<unsigned char>(1, 1) = 40;
  auto spec = image_spec(4, 4, 1);
  spec.scale = 1.0f;
  const auto out = decode(encode(gray, ".png"), spec);
  // Half-pixel centres: output x = 0 maps to input -0.25 (clamped to 0),
  // x = 1 to 0.25, x = 2 to 0.75, x = 3 to 1.25 (clamped to 1).
  EXPECT_NEAR(out[0], 0, 1e-5);
  EXPECT_NEAR(out[1], 25, 1e-5);
  EXPECT_NEAR(out[2], 75, 1e-5);
  EXPECT_NEAR(out[3], 100, 1e-5);
  EXPECT_NEAR(out[4], 50, 1e-5);   // y = 0.25, x = 0: 0.75 * 0 + 0.25 * 200
  EXPECT_NEAR(out[12], 200, 1e-5); // bottom-left corner
  EXPECT_NEAR(out[15], 40, 1e-5);  // bottom-right corner
  cv::Mat reference;
  cv::resize(gray, reference, cv::Size{4, 4}, 0, 0, cv::INTER_LINEAR);
  expect_near_all(out, expected_chw(reference, spec, {0}));
}

TEST(DecodeImageInto, ColorResizeDownMatchesOpenCv) {
  cv::Mat image(9, 7, CV_8UC3);
  std::mt19937 random{42};
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols * 3; ++x)
      image.ptr<unsigned char>(y)[x] = static_cast<unsigned char>(random() & 0xFF);
  auto spec = image_spec(4, 5);
  spec.mean = {0.485f, 0.456f, 0.406f};
  spec.std = {0.229f, 0.224f, 0.225f};
  const auto out = decode(encode(image, ".png"), spec);
  cv::Mat reference;
  cv::resize(image, reference, cv::Size{5, 4}, 0, 0, cv::INTER_LINEAR);
  expect_near_all(out, expected_chw(reference, spec, {2, 1, 0}));
}

TEST(DecodeImageInto, NotPngOrJpegIsUnsupportedMediaType) {
  const auto spec = image_spec(2, 2);
  EXPECT_EQ(error_code_of("GIF89a\x02\x00\x02\x00\x00\x00\x00;", spec, 100),
            ec::unsupported_media_type);
  EXPECT_EQ(error_code_of(std::string("BM\x46\x00\x00\x00\x00\x00", 8), spec, 100),
            ec::unsupported_media_type);
  std::string random_bytes(64, '\0');
  std::mt19937 random{7};
  for (auto& b : random_bytes)
    b = static_cast<char>(random() & 0x7F); // never 0x89 or 0xFF
  EXPECT_EQ(error_code_of(random_bytes, spec, 100), ec::unsupported_media_type);
  EXPECT_EQ(error_code_of("", spec, 100), ec::unsupported_media_type);
  try {
    decode(std::string("GIF89a"), spec);
  } catch (const api_error& error) {
    EXPECT_EQ(error.message, "image is not JPEG or PNG");
  }
}

TEST(DecodeImageInto, HugeDeclaredPngIsRejectedBeforeDecoding) {
  // Only the header is real: decoding would fail on the CRC, so
  // payload_too_large proves the size was checked first.
  auto png = encode(small_bgr(), ".png");
  put_be32(png, 16, 100000);
  put_be32(png, 20, 100000);
  EXPECT_EQ(error_code_of(png, image_spec(2, 2), 4096 * 4096), ec::payload_too_large);
  put_be32(png, 16, 0xFFFFFFFFu); // the product overflows int64
  put_be32(png, 20, 0xFFFFFFFFu);
  EXPECT_EQ(error_code_of(png, image_spec(2, 2), 4096 * 4096), ec::payload_too_large);
}

TEST(DecodeImageInto, PixelLimitIsInclusive) {
  const auto png = encode(small_bgr(), ".png"); // 3 x 2 = 6 pixels
  EXPECT_EQ(decode(png, image_spec(2, 3), 6).size(), 18u);
  EXPECT_EQ(error_code_of(png, image_spec(2, 3), 5), ec::payload_too_large);
}

TEST(DecodeImageInto, HugeDeclaredJpegIsPayloadTooLarge) {
  auto jpeg = crafted_jpeg();
  const auto sof = jpeg.find("\xFF\xC2");
  jpeg[sof + 5] = jpeg[sof + 6] = jpeg[sof + 7] = jpeg[sof + 8] = '\xFF';
  EXPECT_EQ(error_code_of(jpeg, image_spec(2, 2), 4096 * 4096), ec::payload_too_large);
}

TEST(DecodeImageInto, ZeroSizedHeaderIsInvalidInput) {
  auto png = encode(small_bgr(), ".png");
  put_be32(png, 16, 0);
  EXPECT_EQ(error_code_of(png, image_spec(2, 2), 100), ec::invalid_input);
}

TEST(DecodeImageInto, MalformedHeaderIsInvalidInput) {
  const auto png = encode(small_bgr(), ".png");
  EXPECT_EQ(error_code_of(png.substr(0, 20), image_spec(2, 2), 100), ec::invalid_input);
  EXPECT_EQ(error_code_of(bytes_of({0xFF, 0xD8, 0xFF, 0xD9}), image_spec(2, 2), 100),
            ec::invalid_input);
}

TEST(DecodeImageInto, UndecodableBodyIsInvalidInput) {
  const auto png = encode(small_bgr(), ".png");
  EXPECT_EQ(error_code_of(png.substr(0, 40), image_spec(2, 2), 100), ec::invalid_input);
  auto corrupt = png;
  for (size_t i = 33; i < corrupt.size(); ++i)
    corrupt[i] = '\x5A';
  EXPECT_EQ(error_code_of(corrupt, image_spec(2, 2), 100), ec::invalid_input);
  const auto jpeg = encode_jpeg(cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  const auto sos = jpeg.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  EXPECT_EQ(error_code_of(jpeg.substr(0, sos), image_spec(2, 2), 100), ec::invalid_input);
  EXPECT_EQ(error_code_of(crafted_jpeg(), image_spec(2, 2), 1 << 20), ec::invalid_input);
  try {
    decode(png.substr(0, 40), image_spec(2, 2), 100);
  } catch (const api_error& error) {
    EXPECT_EQ(error.message, "image could not be decoded");
  }
}

// --- base64 --------------------------------------------------------------------

TEST(DecodeBase64, RfcVectors) {
  EXPECT_EQ(decode_base64(""), std::string{});
  EXPECT_EQ(decode_base64("Zg=="), "f");
  EXPECT_EQ(decode_base64("Zm8="), "fo");
  EXPECT_EQ(decode_base64("Zm9v"), "foo");
  EXPECT_EQ(decode_base64("Zm9vYg=="), "foob");
  EXPECT_EQ(decode_base64("Zm9vYmE="), "fooba");
  EXPECT_EQ(decode_base64("Zm9vYmFy"), "foobar");
}

TEST(DecodeBase64, PaddingIsOptional) {
  EXPECT_EQ(decode_base64("Zg"), "f");
  EXPECT_EQ(decode_base64("Zm8"), "fo");
  EXPECT_EQ(decode_base64("Zm9vYg"), "foob");
}

TEST(DecodeBase64, EveryByteRoundTrips) {
  std::string bytes;
  for (int i = 0; i < 256; ++i)
    bytes.push_back(static_cast<char>(i));
  for (size_t n = 250; n <= 256; ++n)
    EXPECT_EQ(decode_base64(base64(bytes.substr(0, n))), bytes.substr(0, n)) << n;
  EXPECT_EQ(decode_base64("+/+/"), bytes_of({0xFB, 0xFF, 0xBF}));
}

TEST(DecodeBase64, RejectsWhatIsNotStrictBase64) {
  EXPECT_FALSE(decode_base64("Z"));      // length % 4 == 1
  EXPECT_FALSE(decode_base64("Zm9vY"));  // length % 4 == 1
  EXPECT_FALSE(decode_base64("Zm9vY=")); // still one character too many
  EXPECT_FALSE(decode_base64("Zg="));    // incomplete padding
  EXPECT_FALSE(decode_base64("="));
  EXPECT_FALSE(decode_base64("=="));
  EXPECT_FALSE(decode_base64("===="));
  EXPECT_FALSE(decode_base64("Z==="));
  EXPECT_FALSE(decode_base64("Zm9v===="));
  EXPECT_FALSE(decode_base64("Zg==Zg==")); // padding in the middle
  EXPECT_FALSE(decode_base64("Z=g="));
  EXPECT_FALSE(decode_base64("Zm 9v")); // whitespace
  EXPECT_FALSE(decode_base64("Zm9v\n"));
  EXPECT_FALSE(decode_base64("Zm9v\r\nZm9v"));
  EXPECT_FALSE(decode_base64(" Zm9v"));
  EXPECT_FALSE(decode_base64("Zm-_")); // URL-safe alphabet
  EXPECT_FALSE(decode_base64("Zm9*")); // a bad character in each position
  EXPECT_FALSE(decode_base64("*m9v"));
  EXPECT_FALSE(decode_base64("Zm9vY*=="));
  EXPECT_FALSE(decode_base64("Zm9vYm*="));
  EXPECT_FALSE(decode_base64("Zm9vYm*"));
  EXPECT_FALSE(decode_base64(std::string("Zm\0v", 4)));
  EXPECT_FALSE(decode_base64("Zm\x80v"));
  EXPECT_FALSE(decode_base64("data:image/png;base64,Zm9v"));
}

TEST(DecodeBase64, DecodedPngStillDecodes) {
  const auto png = encode(small_bgr(), ".png");
  const auto bytes = decode_base64(base64(png));
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, png);
  expect_near_all(
      decode(*bytes, image_spec(2, 3, 3, color_order::bgr)),
      expected_chw(small_bgr(), image_spec(2, 3, 3, color_order::bgr), {0, 1, 2}));
}

} // namespace
} // namespace actorserve
