// libFuzzer target over what a client controls at the edge: the predict body
// (JSON parsing, schema and limit checks, tensor and image instances), the
// image header checks and decoding, base64, client address parsing, the
// bytes of one connection carrying several pipelined requests, and the
// standard protocols' bodies (Open Inference Protocol in JSON and with binary
// tensors, TF Serving). The first input byte picks the unit (byte % 8; the
// seeds' first bytes keep their units); the rest is the client's bytes. Only api_error
// may come out of the request code: any other exception, a crash, an
// AddressSanitizer report or a request answered other than by exactly one
// response is a finding.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <httplib.h>

#include "http/client_address.hpp"
#include "protocols/image_decoder.hpp"
#include "protocols/oip_codec.hpp"
#include "protocols/tfserving_codec.hpp"
#include "protocols/v1_codec.hpp"

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

/// The three kinds of model input as model specs, for the standard codecs.
const std::vector<model_spec>& model_specs() {
  static const std::vector<model_spec> specs{{"tensor", tensor_input(), {}, {}},
                                             {"gray", image_input(1), {}, {}},
                                             {"color", image_input(3), {}, {}}};
  return specs;
}

/// Every model kind; only api_error may come out.
template <class Parse> void for_each_model(Parse&& parse) {
  for (const auto& spec : model_specs()) {
    try {
      parse(spec);
    } catch (const api_error&) {
    }
  }
}

void fuzz_oip_json(std::string_view body) {
  for_each_model([&](const model_spec& spec) {
    parse_oip_infer_request(body, std::nullopt, spec, limits);
  });
}

/// The first two bytes (little-endian) are the Inference-Header-Content-Length.
void fuzz_oip_binary(std::string_view bytes) {
  if (bytes.size() < 2)
    return;
  const auto json_length = static_cast<size_t>(static_cast<unsigned char>(bytes[0]) |
                                               static_cast<unsigned char>(bytes[1]) << 8);
  bytes.remove_prefix(2);
  for_each_model([&](const model_spec& spec) {
    parse_oip_infer_request(bytes, json_length, spec, limits);
  });
}

void fuzz_tfserving(std::string_view body) {
  for_each_model(
      [&](const model_spec& spec) { parse_tfserving_predict(body, spec, limits); });
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

/// One connection's bytes, read the way the edge reads a socket: what a
/// read returns beyond one request stays for the next request. Responses
/// are gathered in `output`.
class memory_stream final : public httplib::Stream {
public:
  explicit memory_stream(std::string_view input) : input_(input) {}

  bool has_input() const { return !input_.empty(); }
  const std::string& output() const { return output_; }

  bool is_readable() const override { return has_input(); }
  bool is_writable() const override { return true; }

  ssize_t read(char* ptr, size_t size) override {
    size = std::min(size, input_.size());
    input_.copy(ptr, size);
    input_.remove_prefix(size);
    return static_cast<ssize_t>(size);
  }

  ssize_t write(const char* ptr, size_t size) override {
    output_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

private:
  std::string_view input_;
  std::string output_;
};

/// cpp-httplib's request parsing and routing over one connection carrying
/// pipelined requests, as the edge drives it (process_request on its own
/// stream, once per request); predict bodies go to the predict codec.
class pipelined_server final : public httplib::Server {
public:
  pipelined_server() {
    set_payload_max_length(64 * 1024);
    Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    Post(R"(/api/v1/models/([^/]+)/predict)",
         [](const httplib::Request& req, httplib::Response& res) {
           fuzz_predict_body(req.body);
           res.set_content("{}", "application/json");
         });
  }

  /// Serves every request in `bytes` until they are used up or the
  /// connection would close; each request must add exactly one response,
  /// starting where the previous one ended.
  void serve(std::string_view bytes) {
    memory_stream stream{bytes};
    for (size_t served = 0; served < max_requests && stream.has_input(); ++served) {
      auto answered = stream.output().size();
      bool closed = false;
      bool ok = process_request(stream, false, closed, [](httplib::Request&) {});
      bool one_response = stream.output().compare(answered, 9, "HTTP/1.1 ") == 0;
      if (!one_response && stream.output().size() > answered)
        __builtin_trap(); // bytes that are not the start of a response
      if (!ok || closed)
        break;
      if (!one_response)
        __builtin_trap(); // a request served without a response
    }
  }

private:
  static constexpr size_t max_requests = 64;
};

void fuzz_pipelined_connection(std::string_view bytes) {
  static pipelined_server server;
  server.serve(bytes);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (data[0] % 8) {
    case 0:
      fuzz_predict_body(rest);
      break;
    case 1:
      fuzz_image(rest);
      break;
    case 2:
      fuzz_base64_image(rest);
      break;
    case 3:
      fuzz_client_address(rest);
      break;
    case 4:
      fuzz_pipelined_connection(rest);
      break;
    case 5:
      fuzz_oip_json(rest);
      break;
    case 6:
      fuzz_oip_binary(rest);
      break;
    default:
      fuzz_tfserving(rest);
      break;
  }
  return 0;
}
