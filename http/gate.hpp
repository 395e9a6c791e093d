#pragma once

// The one gate every HTTP door passes (../shared/DESIGN.md, "one gate for every
// door"): framing checks before routing, the request id, the caller's key and
// rate, body limits, and errors written in the door's own protocol. Routes of
// every protocol wrap their handlers with guarded, guarded_with_body or probe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "http/auth.hpp"
#include "messages/error.hpp"

namespace actorserve {

class client_address_resolver;
class metrics;
class rate_limiter;

inline constexpr auto request_id_header = "X-Request-Id";

/// How a protocol spells an error: sets the status and the body.
using error_body_writer = void (*)(httplib::Response& res, const api_error& error);

/// Our API's errors: {"error": {"code", "message", "field"?}} with http_status.
void write_v1_error_body(httplib::Response& res, const api_error& error);

/// The standard protocols' errors (Open Inference, TF Serving):
/// standard_error_body with standard_error_status.
void write_standard_error_body(httplib::Response& res, const api_error& error);

/// The error body, and Retry-After when the error asks for a retry.
void write_error(httplib::Response& res, const api_error& error, error_body_writer body,
                 std::chrono::seconds retry_after = std::chrono::seconds{1});

void write_json(httplib::Response& res, int status, const nlohmann::json& body);

/// Ends the connection after this response: the rest of what the client sent
/// (an unread or refused body) must never be read as a next request.
void close_after_response(httplib::Response& res);

/// The error for a status that cpp-httplib produced itself (no route, body
/// over the limit, unparsable request).
api_error error_for_status(int status);

/// The client's X-Request-Id when it is a sane token, else a random one.
std::string request_id_for(const httplib::Request& req);

/// Requests whose framing is ambiguous or oversized, refused before routing:
/// Content-Length together with Transfer-Encoding (request smuggling), more
/// than one Content-Length, a Content-Length that is not a plain number,
/// transfer codings other than chunked, more header lines than `max_headers`
/// and a declared body over `max_body` (before cpp-httplib reads or skips it).
std::optional<api_error> framing_error(const httplib::Request& req, int32_t max_headers,
                                       uint64_t max_body);

/// Body bytes read for the request last served on this thread, for the
/// access log; the count starts again at 0.
size_t take_request_body_bytes();

/// What every routed request passes before its handler runs: the caller is
/// identified (a valid API key, else the client IP), charged one token of its
/// rate limit, then its key is checked against the route. Requests with a
/// missing or wrong key are charged to their IP, so guessing keys is rate
/// limited too. Refusals and handler errors are written by the door's
/// error_body_writer. Shared by all HTTP threads; holds no mutable state.
class gatekeeper {
public:
  gatekeeper(const key_store& keys, rate_limiter& limiter,
             const client_address_resolver& clients, metrics& stats,
             error_body_writer error_body = write_v1_error_body)
      : keys_(keys), limiter_(limiter), clients_(clients), stats_(stats),
        error_body_(error_body) {}

  /// The same gate, writing errors as `error_body` does.
  gatekeeper speaking(error_body_writer error_body) const {
    return {keys_, limiter_, clients_, stats_, error_body};
  }

  /// The client address for limits and logs (X-Forwarded-For only from a
  /// trusted proxy).
  std::string client_ip(const httplib::Request& req) const;

  /// Why a caller is turned away: the error and, when rate limited, when to
  /// retry.
  struct refusal {
    api_error error;
    std::chrono::seconds retry_after{1};
  };

  /// The rule of every door: a caller presenting `key` (empty: none) from
  /// `remote_addr` (with `forwarded_for`, trusted only from a trusted proxy)
  /// is charged one token, then its key is checked against `required`.
  /// nullopt admits.
  std::optional<refusal> check(std::string_view key, const std::string& remote_addr,
                               std::string_view forwarded_for, access required) const;

  /// True when the request may reach its handler; else the refusal is
  /// written to `res`.
  bool admit(const httplib::Request& req, httplib::Response& res, access required) const;

  /// Reads the body within `max_body` bytes, whatever its framing; on a body
  /// over the limit or cut short, the error is written, the connection will
  /// close, and nullopt comes back.
  std::optional<std::string> read_body(const httplib::ContentReader& read,
                                       httplib::Response& res, size_t max_body) const;

  void write_error(httplib::Response& res, const api_error& error) const {
    actorserve::write_error(res, error, error_body_);
  }

  /// Runs a handler's work; an api_error it throws becomes the error body.
  template <class Work> void run(const Work& work, httplib::Response& res) const {
    try {
      work();
    } catch (const api_error& error) {
      write_error(res, error);
    } catch (const std::exception& e) {
      write_error(res, {ec::internal, e.what(), {}});
    }
  }

private:
  const key_store& keys_;
  rate_limiter& limiter_;
  const client_address_resolver& clients_;
  metrics& stats_;
  error_body_writer error_body_;
};

/// A handler for callers with the `required` access, within their rate.
template <class Handler>
httplib::Server::Handler guarded(const gatekeeper& gate, access required,
                                 Handler handler) {
  return [gate, required, handler](const httplib::Request& req, httplib::Response& res) {
    if (gate.admit(req, res, required))
      gate.run([&] { handler(req, res); }, res);
  };
}

/// A handler for the probes (/health, /ready, ...): no key and no rate limit,
/// so an orchestrator's checks never fail because of other clients.
template <class Handler>
httplib::Server::Handler probe(const gatekeeper& gate, Handler handler) {
  return [gate, handler](const httplib::Request& req, httplib::Response& res) {
    gate.run([&] { handler(req, res); }, res);
  };
}

/// A handler for requests with a body, called as handler(req, body, res): the
/// caller's access and rate are checked before any of the body is read, and the
/// body is counted as it arrives, whatever its framing, so a chunked body cannot
/// grow past `max_body` (cpp-httplib 0.11 bounds only Content-Length bodies).
/// Over the limit: 413, connection closed.
template <class Handler>
httplib::Server::HandlerWithContentReader
guarded_with_body(const gatekeeper& gate, access required, size_t max_body,
                  Handler handler) {
  return [gate, required, max_body, handler](const httplib::Request& req,
                                             httplib::Response& res,
                                             const httplib::ContentReader& read) {
    if (!gate.admit(req, res, required)) {
      close_after_response(res); // the body stays unread
      return;
    }
    if (auto body = gate.read_body(read, res, max_body))
      gate.run([&] { handler(req, *body, res); }, res);
  };
}

} // namespace actorserve
