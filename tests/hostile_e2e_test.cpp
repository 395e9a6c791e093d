// End-to-end: hostile requests over raw sockets against the real binary
// (issue 5, "Tests"). Each expects its exact status, or a closed connection
// where the server may cut the client off mid-send; after each, an honest
// request is served; the server's memory stays bounded over the battery.
// Also: an honest client is served while 64 slow clients hang.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

/// What came back on a raw connection: a status, or 0 when the connection
/// closed (or reset) before a whole response head arrived.
struct raw_answer {
  int status = 0;
  std::string head;
  std::string body;
};

/// A client connection over a plain POSIX socket; no HTTP library.
class raw_connection {
public:
  explicit raw_connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address),
                                       sizeof address) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~raw_connection() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  bool connected() const { return connected_; }

  /// Sends everything, or stops when the server has closed or stopped
  /// reading for `stall` (it may refuse a request before reading all of it).
  bool send_all(std::string_view bytes, std::chrono::milliseconds stall = 3000ms) {
    timeval timeout{static_cast<time_t>(stall.count() / 1000),
                    static_cast<suseconds_t>(stall.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    while (!bytes.empty()) {
      auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0)
        return false;
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  /// Reads one response (head and a Content-Length body).
  raw_answer read_answer(std::chrono::seconds timeout = 15s) {
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string data;
    size_t head_end = std::string::npos;
    char buffer[65536];
    while (head_end == std::string::npos) {
      auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0)
        return {};
      data.append(buffer, static_cast<size_t>(n));
      head_end = data.find("\r\n\r\n");
    }
    raw_answer answer;
    answer.head = data.substr(0, head_end);
    if (answer.head.rfind("HTTP/1.1 ", 0) != 0)
      return {};
    answer.status = std::atoi(answer.head.c_str() + 9);
    size_t length = 0;
    auto at = answer.head.find("Content-Length: ");
    if (at != std::string::npos)
      length = std::stoul(answer.head.substr(at + 16));
    answer.body = data.substr(head_end + 4);
    while (answer.body.size() < length) {
      auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0)
        break;
      answer.body.append(buffer, static_cast<size_t>(n));
    }
    extra_ = answer.body.substr(std::min(length, answer.body.size()));
    answer.body.resize(std::min(length, answer.body.size()));
    return answer;
  }

  /// True when no byte arrives within `timeout` (closed or still open).
  bool sends_nothing_within(std::chrono::milliseconds timeout) {
    timeval tv{0, static_cast<suseconds_t>(timeout.count() * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    return ::recv(fd_, &byte, 1, 0) <= 0;
  }

  /// Bytes that came after the last response read: a second response
  /// means the server read the rest of a refused request as a new one.
  const std::string& extra() const { return extra_; }

private:
  int fd_;
  bool connected_ = false;
  std::string extra_;
};

raw_answer exchange(int port, std::string_view request) {
  raw_connection connection{port};
  if (!connection.connected())
    return {};
  connection.send_all(request);
  return connection.read_answer();
}

/// Sends a hostile request and reads its answer; then nothing more may come:
/// a second answer means the server read the rest of the request (an unread
/// body, junk after a malformed line) as a request of its own.
raw_answer exchange_once(int port, std::string_view request) {
  raw_connection connection{port};
  if (!connection.connected())
    return {};
  connection.send_all(request);
  auto answer = connection.read_answer();
  EXPECT_TRUE(connection.extra().empty()) << "a second answer: " << connection.extra();
  EXPECT_TRUE(connection.sends_nothing_within(500ms)) << "a second answer";
  return answer;
}

const std::string tensor_body = R"({"instances": [{"data": [[1, 2], [3, 4]]}]})";

std::string post(const std::string& path, const std::string& body,
                 const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

std::string predict(const std::string& model, const std::string& body) {
  return post("/api/v1/models/" + model + "/predict", body);
}

std::string image_request(const std::string& bytes) {
  return predict(
      "digits", json{{"instances", {{{"image", testing::base64_encode(bytes)}}}}}.dump());
}

std::string be32(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

/// A PNG signature and IHDR chunk claiming width x height (no pixel data).
std::string png_header(uint32_t width, uint32_t height) {
  return std::string{"\x89PNG\r\n\x1a\n", 8} + be32(13) + "IHDR" + be32(width) +
         be32(height) + std::string{"\x08\x00\x00\x00\x00", 5} + be32(0);
}

/// A JPEG SOI and SOF0 claiming width x height (16 bits each).
std::string jpeg_header(uint16_t width, uint16_t height) {
  std::string sof{"\xFF\xD8\xFF\xC0\x00\x0B\x08", 7};
  sof += {static_cast<char>(height >> 8), static_cast<char>(height),
          static_cast<char>(width >> 8), static_cast<char>(width)};
  return sof + std::string{"\x01\x01\x11\x00\xFF\xD9", 6};
}

std::string nested(int depth, char open, char close, const std::string& inner = "1") {
  return std::string(depth, open) + inner + std::string(depth, close);
}

std::string chunked(const std::string& path, const std::string& chunks) {
  return "POST " + path +
         " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\n" +
         chunks;
}

/// A TLS 1.2 ClientHello record, as a browser opens an https:// URL; holds
/// no newline byte.
std::string tls_client_hello() {
  std::string hello{"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03", 11};
  hello += std::string(32, '\x42');                // random
  hello += std::string{"\x00\x00\x02\x13\x01", 5}; // session id, suites
  hello += std::string{"\x01\x00\x00\x00", 4};     // compression, extensions
  return hello;
}

int64_t rss_kib(int pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoll(line.substr(6));
  return -1;
}

constexpr int closed = 0; // an expected "status": the connection closed

struct hostile_case {
  std::string name;
  std::string request;
  std::set<int> expected; // statuses, or `closed`
};

std::vector<hostile_case> hostile_cases() {
  const std::string predict_path = "/api/v1/models/affine/predict";
  const size_t max_body = 2 * 1024 * 1024; // the server's --max-body-bytes
  std::string many_headers;
  for (int i = 0; i < 200; ++i)
    many_headers += "X-Flood-" + std::to_string(i) + ": 1\r\n";
  std::string header_flood;
  for (int i = 0; i < 100000; ++i)
    header_flood += "X-F: " + std::to_string(i) + "\r\n";
  std::string big_chunks;
  for (size_t sent = 0; sent <= max_body; sent += 65536)
    big_chunks += "10000\r\n" + std::string(65536, ' ') + "\r\n";
  std::string too_many_instances = R"({"instances": [)";
  for (int i = 0; i < 1025; ++i)
    too_many_instances += std::string{i ? "," : ""} + R"({"data": [[1, 2], [3, 4]]})";
  too_many_instances += "]}";

  return {
      // Framing and smuggling.
      {"content_length_and_chunked",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       {400}},
      {"duplicate_content_length",
       "POST " + predict_path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
           std::to_string(tensor_body.size()) + "\r\nContent-Length: " +
           std::to_string(tensor_body.size()) + "\r\n\r\n" + tensor_body,
       {400}},
      {"conflicting_content_lengths",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\n{}}",
       {400}},
      {"absurd_content_length",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n{}",
       {400}},
      {"negative_content_length",
       "POST " + predict_path + " HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
       {400}},
      {"signed_content_length",
       "POST " + predict_path + " HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
       {400}},
      {"content_length_not_a_number",
       "POST " + predict_path + " HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
       {400}},
      {"content_length_over_the_limit_without_body",
       "POST " + predict_path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
           std::to_string(max_body + 1) + "\r\n\r\n",
       {413}},
      {"content_length_of_a_petabyte",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n{}",
       {413}},
      {"oversized_body",
       post(predict_path, std::string(max_body + 4096, ' ')),
       {413, closed}},
      {"oversized_chunked_body", chunked(predict_path, big_chunks), {413, closed}},
      {"transfer_coding_other_than_chunked",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       {400}},
      {"obfuscated_transfer_encoding",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
       {400}},
      {"negative_chunk_size", chunked(predict_path, "-1\r\nabc\r\n0\r\n\r\n"), {400}},
      {"overflowing_chunk_size",
       chunked(predict_path, "fffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
       {400}},
      {"chunk_size_not_hex", chunked(predict_path, "zz\r\nabc\r\n0\r\n\r\n"), {400}},
      {"wrapping_negative_chunk_size", chunked(predict_path, "-2\r\nabc"), {400}},
      {"body_shorter_than_content_length",
       "POST " + predict_path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
       {400}},
      // Header abuse.
      {"too_many_header_lines",
       "GET /api/v1/models HTTP/1.1\r\nHost: x\r\n" + many_headers + "\r\n",
       {431}},
      {"header_flood_of_a_megabyte",
       "GET /api/v1/models HTTP/1.1\r\nHost: x\r\n" + header_flood + "\r\n",
       {431, closed}},
      {"huge_header_line",
       "GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100000, 'a') +
           "\r\n\r\n",
       {431, closed}},
      {"endless_header_line",
       "GET /api/v1/models HTTP/1.1\r\nX-Big: " + std::string(8 << 20, 'a'),
       {431, closed}},
      {"huge_request_line",
       "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n",
       {414, closed}},
      {"ten_thousand_character_model_name",
       predict(std::string(10000, 'm'), tensor_body),
       {414, closed}},
      {"long_model_name_under_the_line_limit",
       predict(std::string(5000, 'm'), tensor_body),
       {404}},
      {"headers_that_never_end",
       "GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
       {408}},
      // Methods, paths and protocols.
      {"unknown_method", "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", {400}},
      {"trace_method", "TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n", {400}},
      {"connect_method", "CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", {400}},
      {"get_on_a_post_route",
       "GET " + predict_path + " HTTP/1.1\r\nHost: x\r\n\r\n",
       {404}},
      {"nul_in_path",
       std::string{"GET /health\0/../api HTTP/1.1\r\nHost: x\r\n\r\n", 41},
       {400, 404}},
      {"encoded_nul_in_model_name", predict("aff%00ine", tensor_body), {404}},
      {"bad_utf8_in_model_name", predict("%ff%fe%fd", tensor_body), {404}},
      {"dot_dot_version",
       post("/api/v1/models/affine/versions/..%2f..%2fetc/predict", tensor_body),
       {404}},
      {"tls_client_hello_on_the_plain_port", tls_client_hello(), {408, 400, closed}},
      {"http2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 404, closed}},
      {"http_0_9_request", "GET /\r\n\r\n", {400}},
      {"garbage_without_newline", std::string(10000, '\x01'), {414, closed}},
      // Bodies.
      {"deeply_nested_arrays", predict("affine", nested(100000, '[', ']')), {400}},
      {"deeply_nested_objects",
       predict("affine", R"({"instances": )" + nested(5000, '[', ']') + "}"),
       {400}},
      {"too_many_instances", predict("affine", too_many_instances), {413}},
      {"bad_utf8_in_json",
       predict("affine", "{\"instances\": [{\"data\": \"\xff\xfe\"}]}"),
       {400}},
      {"json_array_body", predict("affine", "[1, 2, 3]"), {400}},
      {"empty_body", predict("affine", ""), {400}},
      {"not_json_content_type",
       "POST " + predict_path +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: "
           "2\r\n\r\n{}",
       {415}},
      {"nan_in_tensor",
       predict("affine", R"({"instances": [{"data": [[NaN, 1], [2, 3]]}]})"),
       {400}},
      {"unknown_parameter",
       predict("affine", R"({"instances": [{"data": [[1, 2], [3, 4]]}], "parameters": )"
                         R"({"evil": true}})"),
       {400}},
      // Images.
      {"png_claiming_100000x100000", image_request(png_header(100000, 100000)), {413}},
      {"jpeg_claiming_65535x65535", image_request(jpeg_header(65535, 65535)), {413}},
      {"png_claiming_0x0", image_request(png_header(0, 0)), {400}},
      {"truncated_png", image_request(png_header(28, 28)), {400}},
      {"non_image_bytes", image_request("this is not an image at all"), {415}},
      {"gif_bytes", image_request("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), {415}},
      {"huge_base64_of_junk", image_request(std::string(1400000, 'J')), {415}},
      {"invalid_base64",
       predict("digits", R"({"instances": [{"image": "!!!not base64!!!"}]})"),
       {400}},
  };
}

class hostile_e2e : public ::testing::Test {
protected:
  void SetUp() override {
    testing::copy_model("affine", repository_.path());
    testing::copy_model("digits", repository_.path());
  }

  testing::temp_dir repository_;
};

TEST_F(hostile_e2e, every_hostile_request_is_refused_and_honest_ones_still_served) {
  testing::server_process server{{"--model-repository", repository_.path().string(),
                                  "--max-body-bytes", "2097152", "--read-timeout-s",
                                  "2"}};
  auto honest = [&] { return exchange(server.port(), predict("affine", tensor_body)); };
  for (int i = 0; i < 20; ++i) // warm up allocator and thread stacks
    ASSERT_EQ(honest().status, 200);
  auto rss_before = rss_kib(server.pid());
  ASSERT_GT(rss_before, 0);

  auto cases = hostile_cases();
  ASSERT_GE(cases.size(), 40u);
  for (const auto& hostile : cases) {
    SCOPED_TRACE(hostile.name);
    auto answer = exchange_once(server.port(), hostile.request);
    EXPECT_TRUE(hostile.expected.count(answer.status))
        << hostile.name << ": got " << answer.status << "\n"
        << answer.head << "\n"
        << answer.body.substr(0, 300);
    if (answer.status >= 400) {
      auto body = json::parse(answer.body, nullptr, false);
      EXPECT_TRUE(body.is_object() && body.contains("error")) << answer.body;
    }
    EXPECT_EQ(honest().status, 200) << "after " << hostile.name;
  }
  auto growth_mib = (rss_kib(server.pid()) - rss_before) / 1024;
  EXPECT_LT(growth_mib, 100) << "RSS grew by " << growth_mib << " MiB";
}

TEST_F(hostile_e2e, an_honest_client_is_served_while_64_slow_clients_hang) {
  testing::server_process server{
      {"--model-repository", repository_.path().string(), "--read-timeout-s", "4"}};
  // Each slow client sends part of its headers, then a byte now and then,
  // never finishing: a slowloris.
  std::vector<std::unique_ptr<raw_connection>> slow;
  for (int i = 0; i < 64; ++i) {
    slow.push_back(std::make_unique<raw_connection>(server.port()));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->send_all("GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-S"));
  }
  auto started = std::chrono::steady_clock::now();
  for (int round = 0; round < 3; ++round) {
    for (auto& client : slow)
      client->send_all("s");
    auto asked = std::chrono::steady_clock::now();
    EXPECT_EQ(exchange(server.port(), predict("affine", tensor_body)).status, 200);
    // Well under the 4 s the slow clients may hold their threads.
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 3s);
    std::this_thread::sleep_for(500ms);
  }
  // Trickling does not keep a connection: the headers had 4 s in all.
  for (auto& client : slow) {
    auto answer = client->read_answer(10s);
    EXPECT_TRUE(answer.status == 408 || answer.status == closed) << answer.status;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 12s);
  EXPECT_EQ(exchange(server.port(), predict("affine", tensor_body)).status, 200);
}

TEST_F(hostile_e2e, connections_beyond_max_connections_are_refused_with_503) {
  testing::server_process server{{"--model-repository", repository_.path().string(),
                                  "--max-connections", "6", "--read-timeout-s", "5"}};
  std::vector<std::unique_ptr<raw_connection>> idle;
  for (int i = 0; i < 6; ++i) { // half a request head each: they hold no thread
    idle.push_back(std::make_unique<raw_connection>(server.port()));
    idle.back()->send_all("GET /health HTTP/1.1\r\nHost: x\r\n");
  }
  std::this_thread::sleep_for(1s); // all six accepted
  raw_connection extra{server.port()};
  auto answer = extra.read_answer(5s);
  EXPECT_EQ(answer.status, 503);
  EXPECT_NE(answer.head.find("Retry-After: 1"), std::string::npos) << answer.head;
  idle.clear(); // they close; there is room again
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(exchange(server.port(), predict("affine", tensor_body)).status, 200);
}

TEST_F(hostile_e2e, requests_beyond_workers_and_queue_are_refused_with_503) {
  std::filesystem::copy(testing::test_repository() / "slow", repository_.path() / "slow",
                        std::filesystem::copy_options::recursive);
  testing::server_process server{{"--model-repository", repository_.path().string(),
                                  "--http-threads", "1", "--max-pending-connections",
                                  "1"}};
  std::string slow_rows = R"({"instances": [)";
  for (int i = 0; i < 40; ++i) // about 2 s on the one slow instance
    slow_rows += std::string{i == 0 ? "" : ", "} + R"({"data": [1, 2, 3, 4]})";
  slow_rows += "]}";
  raw_connection running{server.port()};
  running.send_all(predict("slow", slow_rows)); // takes the one worker
  std::this_thread::sleep_for(300ms);
  raw_connection waiting{server.port()};
  waiting.send_all(predict("affine", tensor_body)); // waits for it
  std::this_thread::sleep_for(300ms);
  raw_connection refused{server.port()};
  refused.send_all(predict("affine", tensor_body));
  auto answer = refused.read_answer(5s);
  EXPECT_EQ(answer.status, 503);
  EXPECT_NE(answer.head.find("Retry-After: 1"), std::string::npos) << answer.head;
  EXPECT_EQ(running.read_answer(10s).status, 200);
  EXPECT_EQ(waiting.read_answer(10s).status, 200);
}

TEST_F(hostile_e2e, clients_over_their_rate_get_429_with_retry_after) {
  const std::string key = "predict-key-0123456789";
  testing::server_process server{{"--model-repository", repository_.path().string(),
                                  "--predict-rate-per-s", "1", "--predict-burst", "2",
                                  "--anonymous-rate-per-s", "1", "--anonymous-burst", "3",
                                  "--trusted-proxies", "127.0.0.1"},
                                 {{"ACTORSERVE_API_KEYS", key}}};
  auto get = [&](const std::string& path, const std::string& headers) {
    return exchange(server.port(),
                    "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n");
  };
  // A key has its own bucket: its burst, then 429.
  const auto with_key = "X-API-Key: " + key + "\r\n";
  EXPECT_EQ(get("/api/v1/models", with_key).status, 200);
  EXPECT_EQ(get("/api/v1/models", with_key).status, 200);
  auto limited = get("/api/v1/models", with_key);
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.head.find("Retry-After: 1\r\n"), std::string::npos) << limited.head;
  EXPECT_EQ(json::parse(limited.body, nullptr, false)["error"]["code"], "rate_limited");

  // Without a valid key the client IP is charged, as named by the trusted
  // proxy; wrong keys count too.
  const auto from_a = "X-Forwarded-For: 198.51.100.7, 203.0.113.1\r\n";
  EXPECT_EQ(get("/api/v1/models", from_a).status, 401);
  EXPECT_EQ(get("/api/v1/models", std::string{from_a} + "X-API-Key: guess\r\n").status,
            401);
  EXPECT_EQ(get("/api/v1/models", from_a).status, 401);
  EXPECT_EQ(get("/api/v1/models", from_a).status, 429);
  // Another client behind the proxy has its own bucket; probes are exempt.
  EXPECT_EQ(get("/api/v1/models", "X-Forwarded-For: 203.0.113.2\r\n").status, 401);
  EXPECT_EQ(get("/health", from_a).status, 200);
  EXPECT_EQ(get("/ready", from_a).status, 200);

  auto metrics = get("/metrics", "");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(
      metrics.body.find(R"(actorserve_rejected_requests_total{reason="rate_limited"} 2)"),
      std::string::npos);
  EXPECT_NE(server.stderr_text().find(R"("client_ip":"203.0.113.1")"), std::string::npos);

  // Tokens come back at the configured rate.
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(get("/api/v1/models", with_key).status, 200);
}

TEST_F(hostile_e2e, forwarded_for_from_an_untrusted_peer_is_ignored) {
  testing::server_process server{{"--model-repository", repository_.path().string(),
                                  "--anonymous-rate-per-s", "1", "--anonymous-burst",
                                  "2"}};
  // Rotating X-Forwarded-For does not give a client fresh buckets.
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(exchange(server.port(), "GET /api/v1/models HTTP/1.1\r\nHost: x\r\n"
                                      "X-Forwarded-For: 10.0.0." +
                                          std::to_string(i) + "\r\n\r\n")
                  .status,
              200);
  EXPECT_EQ(exchange(server.port(), "GET /api/v1/models HTTP/1.1\r\nHost: x\r\n"
                                    "X-Forwarded-For: 10.0.0.99\r\n\r\n")
                .status,
            429);
  EXPECT_EQ(server.stderr_text().find(R"("client_ip":"10.0.0.)"), std::string::npos);
}

} // namespace
} // namespace actorserve
