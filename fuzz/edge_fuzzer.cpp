// libFuzzer target over what a client controls at the edge: the predict body
// (JSON parsing, schema and limit checks, tensor and image instances), the
// image header checks and decoding, base64, and client address parsing.
// The first input byte picks the unit; the rest is the client's bytes. Only
// api_error may come out of the request code: any other exception, a crash
// or an AddressSanitizer report is a finding.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/client_address.hpp"
#include "http/image_decoder.hpp"
#include "http/predict_codec.hpp"

namespace {

using namespace actorserve;

/// Small limits, so that a run spends its time on parsing, not on pixels.
const request_limits limits{/*max_instances=*/64, /*max_image_pixels=*/256 * 256,
                            /*default_timeout_ms=*/1000, /*max_timeout_ms=*/5000,
                            /*max_json_depth=*/64};

input_spec tensor_input() {
  input_spec spec;
  spec.type = input_kind::tensor;
  spec.shape = {2, 2};
  return spec;
}

input_spec image_input(int32_t channels) {
  input_spec spec;
  spec.type = input_kind::image;
  spec.height = 28;
  spec.width = 28;
  spec.channels = channels;
  spec.mean.assign(static_cast<size_t>(channels), 0.5f);
  spec.std.assign(static_cast<size_t>(channels), 0.5f);
  spec.shape = {channels, 28, 28};
  return spec;
}

void fuzz_predict_body(std::string_view body) {
  try {
    auto parsed = parse_predict_body(body, limits);
    for (const auto& input : {tensor_input(), image_input(1), image_input(3)}) {
      try {
        build_input_batch(parsed, input, limits);
      } catch (const api_error&) {
      }
    }
  } catch (const api_error&) {
  }
}

void fuzz_image(std::string_view bytes) {
  auto format = sniff_image_format(bytes);
  read_image_size(bytes, format);
  std::vector<float> out(3 * 28 * 28);
  try {
    decode_image_into(bytes, image_input(3), limits.max_image_pixels, out.data());
  } catch (const api_error&) {
  }
}

void fuzz_base64_image(std::string_view text) {
  if (auto bytes = decode_base64(text))
    fuzz_image(*bytes);
}

void fuzz_client_address(std::string_view text) {
  auto comma = text.find('|');
  auto trusted = text.substr(0, comma);
  auto forwarded =
      comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  client_address_resolver resolver{trusted};
  canonical_ip(text);
  resolver.client_ip(std::string{trusted.substr(0, trusted.find(','))}, forwarded);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (data[0] % 4) {
    case 0:
      fuzz_predict_body(rest);
      break;
    case 1:
      fuzz_image(rest);
      break;
    case 2:
      fuzz_base64_image(rest);
      break;
    default:
      fuzz_client_address(rest);
      break;
  }
  return 0;
}
