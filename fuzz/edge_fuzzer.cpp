// libFuzzer target over what a client controls at the edge: the predict body
// (JSON parsing, schema and limit checks, tensor and image instances), the
// image header checks and decoding, base64, client address parsing, the
// bytes of one connection carrying several pipelined requests, and the
// standard protocols' bodies (Open Inference Protocol in JSON, with binary
// tensors and as a gRPC ModelInferRequest, TF Serving). The first input byte
// picks the unit (byte % 9; the seeds' first bytes keep their units); the rest is the
// client's bytes. Only api_error may come out of the request code: any other exception, a
// crash, an AddressSanitizer report or a request answered other than by exactly one
// response is a finding.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc/oip_grpc_codec.hpp"
#include "http/client_address.hpp"
#include "http/edge_stream.hpp"
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

/// The bytes as a serialized ModelInferRequest (what a gRPC client sends).
void fuzz_grpc_infer(std::string_view bytes) {
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return; // gRPC answers INTERNAL before the door sees it
  for_each_model(
      [&](const model_spec& spec) { parse_grpc_infer_request(request, spec, limits); });
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

/// A connected socket pair: the edge reads one end, the fuzzer plays the
/// client on the other.
class socket_pair {
public:
  socket_pair() { ::socketpair(AF_UNIX, SOCK_STREAM, 0, ends_); }
  ~socket_pair() {
    ::close(ends_[0]);
    ::close(ends_[1]);
  }
  int server() const { return ends_[0]; }
  int client() const { return ends_[1]; }

private:
  int ends_[2] = {-1, -1};
};

/// What the server sent so far, appended to `output` without waiting.
void receive_answers(int fd, std::string& output) {
  char chunk[16384];
  ssize_t received;
  while ((received = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
    output.append(chunk, static_cast<size_t>(received));
}

/// cpp-httplib's request parsing and routing over one connection carrying
/// pipelined requests, read through the edge's own stream (its read-ahead
/// buffer, header limits and gathered writes) as a worker drives it: the
/// client's bytes wait on a socket, then each request is served by
/// process_request; predict bodies go to the predict codec.
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
    limits_.max_header_bytes = 4096; // reached by inputs of the fuzzer's size
  }

  /// Serves every request of `bytes` until they are used up, a limit is
  /// broken or the connection would close; each request must add exactly
  /// one response, starting where the previous one ended.
  void serve(std::string_view bytes) {
    socket_pair sockets;
    // The whole input fits the socket's buffer: the client then closes.
    if (::send(sockets.client(), bytes.data(), bytes.size(), MSG_DONTWAIT) !=
        static_cast<ssize_t>(bytes.size()))
      return;
    ::shutdown(sockets.client(), SHUT_WR);
    edge_stream stream{sockets.server(), limits_};
    while (stream.receive_available() == edge_stream::receive_result::data) {
    }
    stream.request_ready(); // what the parking thread asks before a worker
    std::string output;
    for (size_t served = 0; served < max_requests && stream.buffered() > 0; ++served) {
      auto answered = output.size();
      stream.begin_request(std::chrono::steady_clock::now());
      bool closed = false;
      bool ok = process_request(stream, false, closed,
                                [&stream](httplib::Request&) { stream.end_headers(); });
      ok = stream.flush() && ok;
      receive_answers(sockets.client(), output);
      if (stream.refusal() != 0 || !stream.headers_complete())
        return; // the edge answers a broken limit itself and closes
      bool one_response = output.compare(answered, 9, "HTTP/1.1 ") == 0;
      if (!one_response && output.size() > answered)
        __builtin_trap(); // bytes that are not the start of a response
      if (!ok || closed)
        break;
      if (!one_response)
        __builtin_trap(); // a request served without a response
      stream.request_ready();
    }
  }

private:
  static constexpr size_t max_requests = 64;
  edge_limits limits_;
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
  switch (data[0] % 9) {
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
    case 7:
      fuzz_tfserving(rest);
      break;
    default:
      fuzz_grpc_infer(rest);
      break;
  }
  return 0;
}
