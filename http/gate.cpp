#include "http/gate.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include "http/client_address.hpp"
#include "http/edge_server.hpp"
#include "http/rate_limiter.hpp"
#include "protocols/standard_errors.hpp"
#include "telemetry/logging.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

thread_local size_t request_body_bytes = 0;

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

/// A Content-Length is 1 to 18 digits: no sign, no spaces, no overflow.
bool is_sane_length(const std::string& value) {
  return !value.empty() && value.size() <= 18 &&
         std::all_of(value.begin(), value.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

api_error body_too_large(uint64_t max_body) {
  return {ec::payload_too_large,
          "the request body is over " + std::to_string(max_body) + " bytes",
          {}};
}

/// Buckets are named by the key's digest: no key is kept in the table.
std::string digest_of(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return {reinterpret_cast<const char*>(digest), sizeof digest};
}

} // namespace

void write_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

void write_v1_error_body(httplib::Response& res, const api_error& error) {
  json detail{{"code", code_name(error.code)}, {"message", error.message}};
  if (!error.field.empty())
    detail["field"] = error.field;
  write_json(res, http_status(error.code), json{{"error", detail}});
}

void write_standard_error_body(httplib::Response& res, const api_error& error) {
  write_json(res, standard_error_status(error.code), standard_error_body(error));
}

void write_error(httplib::Response& res, const api_error& error, error_body_writer body,
                 std::chrono::seconds retry_after) {
  if (wants_retry_after(error.code))
    res.set_header("Retry-After", std::to_string(retry_after.count()));
  body(res, error);
}

void close_after_response(httplib::Response& res) {
  res.set_header("Connection", "close");
  edge_server::close_after_response();
}

api_error error_for_status(int status) {
  switch (status) {
    case 404:
      return {ec::not_found, "no such route", {}};
    case 413:
      return {ec::payload_too_large, "the request body is over the size limit", {}};
    case 415:
      return {ec::unsupported_media_type, "unsupported media type", {}};
    case 503:
      return {ec::unavailable, "the server is unavailable", {}};
    default:
      if (status >= 500)
        return {ec::internal, "internal error", {}};
      return {ec::invalid_request, "the request could not be processed", {}};
  }
}

std::string request_id_for(const httplib::Request& req) {
  auto given = req.get_header_value(request_id_header);
  if (!given.empty() && given.size() <= 128 &&
      std::all_of(given.begin(), given.end(), is_token_char))
    return given;
  return random_request_id();
}

std::optional<api_error> framing_error(const httplib::Request& req, int32_t max_headers,
                                       uint64_t max_body) {
  if (static_cast<int64_t>(req.headers.size()) > max_headers)
    return api_error{ec::header_fields_too_large, "too many header lines", {}};
  auto lengths = req.headers.count("Content-Length");
  if (lengths > 1)
    return api_error{ec::invalid_request, "more than one Content-Length",
                     "Content-Length"};
  if (lengths == 1 && !is_sane_length(req.get_header_value("Content-Length")))
    return api_error{ec::invalid_request, "Content-Length is not a plain number",
                     "Content-Length"};
  auto codings = req.headers.count("Transfer-Encoding");
  if (codings > 1 ||
      (codings == 1 && !iequals(req.get_header_value("Transfer-Encoding"), "chunked")))
    return api_error{ec::invalid_request, "the only transfer coding taken is chunked",
                     "Transfer-Encoding"};
  if (lengths == 1 && req.has_header("Transfer-Encoding"))
    return api_error{ec::invalid_request, "both Content-Length and Transfer-Encoding",
                     "Transfer-Encoding"};
  if (lengths == 1 && std::stoull(req.get_header_value("Content-Length")) > max_body)
    return body_too_large(max_body);
  return std::nullopt;
}

size_t take_request_body_bytes() {
  return std::exchange(request_body_bytes, 0);
}

std::string gatekeeper::client_ip(const httplib::Request& req) const {
  return clients_.client_ip(req.remote_addr, req.get_header_value("X-Forwarded-For"));
}

std::optional<gatekeeper::refusal> gatekeeper::check(std::string_view key,
                                                     const std::string& remote_addr,
                                                     std::string_view forwarded_for,
                                                     access required) const {
  auto caller = key.empty() ? role::none : keys_.role_of(key);
  auto client = caller == role::none
                    ? "ip:" + clients_.client_ip(remote_addr, forwarded_for)
                    : "key:" + digest_of(key);
  if (auto wait = limiter_.acquire(client, caller)) {
    stats_.count_rejection("rate_limited");
    return refusal{{ec::rate_limited, "too many requests; retry later", {}}, *wait};
  }
  if (auto denied = check_access(keys_, required, key))
    return refusal{*denied};
  return std::nullopt;
}

bool gatekeeper::admit(const httplib::Request& req, httplib::Response& res,
                       access required) const {
  auto refused = check(req.get_header_value("X-API-Key"), req.remote_addr,
                       req.get_header_value("X-Forwarded-For"), required);
  if (refused)
    actorserve::write_error(res, refused->error, error_body_, refused->retry_after);
  return !refused;
}

std::optional<std::string> gatekeeper::read_body(const httplib::ContentReader& read,
                                                 httplib::Response& res,
                                                 size_t max_body) const {
  std::string body;
  bool too_large = false;
  auto complete = read([&](const char* data, size_t size) {
    too_large = body.size() + size > max_body;
    if (!too_large)
      body.append(data, size);
    return !too_large;
  });
  request_body_bytes = body.size();
  // A declared Content-Length over the limit never gets here (framing_error).
  if (too_large || !complete) {
    close_after_response(res);
    write_error(res,
                too_large
                    ? body_too_large(max_body)
                    : api_error{ec::invalid_request, "the request body ended early", {}});
    return std::nullopt;
  }
  return body;
}

} // namespace actorserve
