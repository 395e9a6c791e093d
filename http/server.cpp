#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <random>

#include <caf/send.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "config/model_repository.hpp" // is_version_name
#include "http/auth.hpp"
#include "http/bridge.hpp"
#include "http/client_address.hpp"
#include "http/edge_server.hpp"
#include "http/model_health.hpp"
#include "http/rate_limiter.hpp"
#include "messages/error.hpp"
#include "protocols/status_json.hpp"
#include "protocols/v1_codec.hpp"
#include "telemetry/logging.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

constexpr auto request_id_header = "X-Request-Id";
/// Budget for control-plane asks (listings, health) that carry no deadline.
constexpr std::chrono::milliseconds control_timeout{5000};
/// How old /health's view of the models may be.
constexpr std::chrono::milliseconds health_refresh{250};
/// Extra time HTTP waits beyond a request's deadline, so that the batcher's
/// own deadline_exceeded answer (which drops the queued work) arrives first.
constexpr std::chrono::milliseconds reply_grace{250};

void write_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

void write_error(httplib::Response& res, const api_error& error,
                 std::chrono::seconds retry_after = std::chrono::seconds{1}) {
  json detail{{"code", code_name(error.code)}, {"message", error.message}};
  if (!error.field.empty())
    detail["field"] = error.field;
  if (wants_retry_after(error.code))
    res.set_header("Retry-After", std::to_string(retry_after.count()));
  write_json(res, http_status(error.code), json{{"error", detail}});
}

/// Ends the connection after this response: the rest of what the client sent
/// (an unread or refused body) must never be read as a next request.
void close_after_response(httplib::Response& res) {
  res.set_header("Connection", "close");
  edge_server::close_after_response();
}

/// The error for a status that cpp-httplib produced itself (no route, body
/// over the limit, unparsable request).
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

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

/// The client's X-Request-Id when it is a sane token, else a random one.
std::string request_id_for(const httplib::Request& req) {
  auto given = req.get_header_value(request_id_header);
  if (!given.empty() && given.size() <= 128 &&
      std::all_of(given.begin(), given.end(), is_token_char))
    return given;
  return random_request_id();
}

/// Runs a handler's work; an api_error it throws becomes the error body.
template <class Work> void run_guarded(const Work& work, httplib::Response& res) {
  try {
    work();
  } catch (const api_error& error) {
    write_error(res, error);
  } catch (const std::exception& e) {
    write_error(res, {ec::internal, e.what(), {}});
  }
}

/// What every routed request passes before its handler runs: the caller is
/// identified (a valid API key, else the client IP), charged one token of its
/// rate limit, then its key is checked against the route. Requests with a
/// missing or wrong key are charged to their IP, so guessing keys is rate
/// limited too. Shared by all HTTP threads; holds no mutable state itself.
class gatekeeper {
public:
  gatekeeper(const key_store& keys, rate_limiter& limiter,
             const client_address_resolver& clients, metrics& stats)
      : keys_(keys), limiter_(limiter), clients_(clients), stats_(stats) {}

  /// The client address for limits and logs (X-Forwarded-For only from a
  /// trusted proxy).
  std::string client_ip(const httplib::Request& req) const {
    return clients_.client_ip(req.remote_addr, req.get_header_value("X-Forwarded-For"));
  }

  /// True when the request may reach its handler; else the refusal is
  /// written to `res`.
  bool admit(const httplib::Request& req, httplib::Response& res, access required) const {
    auto key = req.get_header_value("X-API-Key");
    auto caller = key.empty() ? role::none : keys_.role_of(key);
    auto client = caller == role::none ? "ip:" + client_ip(req) : "key:" + digest_of(key);
    if (auto wait = limiter_.acquire(client, caller)) {
      stats_.count_rejection("rate_limited");
      write_error(res, {ec::rate_limited, "too many requests; retry later", {}}, *wait);
      return false;
    }
    if (auto denied = check_access(keys_, required, key)) {
      write_error(res, *denied);
      return false;
    }
    return true;
  }

private:
  /// Buckets are named by the key's digest: no key is kept in the table.
  static std::string digest_of(const std::string& key) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
    return {reinterpret_cast<const char*>(digest), sizeof digest};
  }

  const key_store& keys_;
  rate_limiter& limiter_;
  const client_address_resolver& clients_;
  metrics& stats_;
};

/// A handler for callers with the `required` access, within their rate.
template <class Handler>
httplib::Server::Handler guarded(const gatekeeper& gate, access required,
                                 Handler handler) {
  return [gate, required, handler](const httplib::Request& req, httplib::Response& res) {
    if (gate.admit(req, res, required))
      run_guarded([&] { handler(req, res); }, res);
  };
}

/// A handler for the probes (/health, /ready): no key and no rate limit, so
/// an orchestrator's checks never fail because of other clients.
template <class Handler> httplib::Server::Handler probe(Handler handler) {
  return [handler](const httplib::Request& req, httplib::Response& res) {
    run_guarded([&] { handler(req, res); }, res);
  };
}

/// Body bytes of the request being served on this thread, for the access log.
thread_local size_t request_body_bytes = 0;

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
    request_body_bytes = 0;
    if (!gate.admit(req, res, required)) {
      close_after_response(res); // the body stays unread
      return;
    }
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
    if (too_large) {
      close_after_response(res);
      return write_error(
          res, {ec::payload_too_large,
                "the request body is over " + std::to_string(max_body) + " bytes",
                {}});
    }
    if (!complete) {
      close_after_response(res);
      return write_error(res, {ec::invalid_request, "the request body ended early", {}});
    }
    run_guarded([&] { handler(req, body, res); }, res);
  };
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

/// Requests whose framing is ambiguous or oversized, refused before routing:
/// Content-Length together with Transfer-Encoding (request smuggling), more
/// than one Content-Length, a Content-Length that is not a plain number,
/// transfer codings other than chunked, more header lines than `max_headers`
/// and a declared body over `max_body` (before cpp-httplib reads or skips it).
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
    return api_error{ec::payload_too_large,
                     "the request body is over " + std::to_string(max_body) + " bytes",
                     {}};
  return std::nullopt;
}

/// Bodies must be JSON: a declared non-JSON content type is refused.
void require_json_body(const httplib::Request& req) {
  auto type = req.get_header_value("Content-Type");
  if (type.empty())
    return;
  auto media = type.substr(0, type.find(';'));
  media.erase(media.find_last_not_of(" \t") + 1);
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (media != "application/json")
    throw api_error{ec::unsupported_media_type,
                    "the body must be application/json, not " + media, "Content-Type"};
}

template <class T> T value_or_throw(caf::expected<T>&& result) {
  if (!result)
    throw to_api_error(result.error());
  return std::move(*result);
}

/// An admin body: a JSON object with only `allowed` keys ("" = `{}`).
json parse_admin_body(const httplib::Request& req, const std::string& text,
                      std::initializer_list<std::string_view> allowed) {
  require_json_body(req);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    return json::object();
  auto body = json::parse(text, nullptr, false);
  if (body.is_discarded())
    throw api_error{ec::invalid_json, "the body is not valid JSON", {}};
  if (!body.is_object())
    throw api_error{ec::invalid_request, "the body must be a JSON object", {}};
  for (const auto& [key, value] : body.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw api_error{ec::invalid_request, "unknown key", key.substr(0, 100)};
  return body;
}

/// A version named by an admin: a positive integer, as string or number.
std::string version_field(const json& value, const std::string& field) {
  std::string text;
  if (value.is_string())
    text = value.get<std::string>();
  else if (value.is_number_unsigned())
    text = std::to_string(value.get<uint64_t>());
  if (!is_version_name(text))
    throw api_error{ec::version_not_found,
                    "a version is a positive integer naming a folder of the model",
                    field};
  return text;
}

traffic_split parse_traffic(const json& body) {
  traffic_split split;
  if (body.contains("default"))
    split.default_version = version_field(body["default"], "default");
  if (body.contains("weights")) {
    const auto& weights = body["weights"];
    if (!weights.is_object())
      throw api_error{ec::invalid_request, "weights must be an object", "weights"};
    for (const auto& [version, weight] : weights.items()) {
      auto field = "weights." + version.substr(0, 20);
      if (!weight.is_number_integer() || weight.get<int64_t>() < 0 ||
          weight.get<int64_t>() > 1'000'000)
        throw api_error{ec::invalid_request, "a weight is an integer from 0 to 1000000",
                        field};
      split.weights[version_field(version, field)] = weight.get<int32_t>();
    }
  }
  return split;
}

/// A key naming one prediction to the actors that may withdraw it: unique
/// in this process, and, from a random start, across the nodes of a cluster.
uint64_t next_cancel_key() {
  static std::atomic<uint64_t> next{(uint64_t{std::random_device{}()} << 32) | 1};
  uint64_t key = next.fetch_add(1, std::memory_order_relaxed);
  return key == 0 ? next.fetch_add(1, std::memory_order_relaxed) : key;
}

/// A validated prediction, ready to send: its model's directory entry, the
/// request, and how to format the answer.
struct prepared_call {
  std::shared_ptr<const directory_entry> model;
  predict_request request;
  output_options output;
};

std::chrono::milliseconds remaining(clock::time_point deadline) {
  return std::max(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()),
      std::chrono::milliseconds{1});
}

rate_limiter_options rate_limits_of(const server_options& options) {
  rate_limiter_options limits;
  limits.predict = {double(options.predict_rate_per_s), double(options.predict_burst)};
  limits.admin = {double(options.admin_rate_per_s), double(options.admin_burst)};
  limits.anonymous = {double(options.anonymous_rate_per_s),
                      double(options.anonymous_burst)};
  limits.max_clients = static_cast<size_t>(options.rate_limit_max_clients);
  return limits;
}

edge_limits edge_limits_of(const server_options& options) {
  edge_limits limits;
  limits.worker_threads = static_cast<size_t>(options.http_threads);
  limits.max_pending_requests = static_cast<size_t>(options.max_pending_connections);
  limits.max_connections = static_cast<size_t>(options.max_connections);
  limits.max_header_bytes = static_cast<size_t>(options.max_header_bytes);
  limits.header_timeout = std::chrono::seconds{options.read_timeout_s};
  limits.request_timeout = std::chrono::seconds{options.request_timeout_s};
  limits.read_timeout = std::chrono::seconds{options.read_timeout_s};
  limits.write_timeout = std::chrono::seconds{options.write_timeout_s};
  limits.idle_timeout = std::chrono::seconds{options.keep_alive_timeout_s};
  limits.max_requests_per_connection = static_cast<size_t>(options.keep_alive_max_count);
  return limits;
}

/// The access log line and metrics of a request.
void record_access(metrics& stats, const std::string& request_id,
                   const std::string& client_ip, const std::string& method,
                   const std::string& route, const std::string& model,
                   const std::string& version, int status, double seconds,
                   size_t input_bytes) {
  stats.observe_request(method, route, status, seconds);
  if (!spdlog::should_log(spdlog::level::info))
    return; // building the fields costs a dozen allocations, logged or not
  log_event(spdlog::level::info, "access",
            {{"request_id", request_id},
             {"client_ip", client_ip},
             {"method", route == "unmatched" ? "-" : method},
             {"route", route},
             {"model", model},
             {"version", version},
             {"status", status},
             {"latency_ms", seconds * 1000.0},
             {"input_bytes", input_bytes}});
}

} // namespace

http_server::http_server(caf::actor_system& system, registry_actor registry,
                         std::shared_ptr<const predictor_directory> directory,
                         job_store_actor jobs, std::shared_ptr<const key_store> keys,
                         std::shared_ptr<metrics> stats, server_options options)
    : system_(system), registry_(std::move(registry)), directory_(std::move(directory)),
      jobs_(std::move(jobs)), keys_(std::move(keys)), stats_(std::move(stats)),
      options_(std::move(options)),
      server_(std::make_unique<edge_server>(
          edge_limits_of(options_),
          [stats = stats_](int status, const std::string& client) {
            record_access(*stats, "", client, "-", "unmatched", "", "", status, 0.0, 0);
          })),
      limiter_(std::make_unique<rate_limiter>(rate_limits_of(options_))),
      clients_(std::make_unique<client_address_resolver>(options_.trusted_proxies)),
      health_(std::make_unique<model_health_view>(system_, registry_, health_refresh)) {
  server_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  install_routes();
}

http_server::~http_server() = default;

int http_server::bind() {
  auto port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
              : server_->bind_to_port(options_.host, options_.port) ? options_.port
                                                                    : -1;
  if (port > 0 && !server_->set_backlog(options_.listen_backlog))
    return -1;
  return port;
}

bool http_server::serve() {
  return server_->listen_after_bind();
}

void http_server::stop() {
  server_->stop();
}

void http_server::install_routes() {
  auto& server = *server_;
  const gatekeeper gate{*keys_, *limiter_, *clients_, *stats_};
  const auto max_body = static_cast<size_t>(options_.max_body_bytes);
  server.set_pre_routing_handler([this](const httplib::Request& req,
                                        httplib::Response& res) {
    res.set_header(request_id_header, request_id_for(req));
    if (auto refused = framing_error(req, options_.max_header_count,
                                     static_cast<uint64_t>(options_.max_body_bytes))) {
      write_error(res, *refused);
      close_after_response(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty())
      write_error(res, error_for_status(res.status));
  });
  server.set_logger([this, gate](const httplib::Request& req,
                                 const httplib::Response& res) {
    if (edge_server::refusal_status() != 0)
      return; // the edge answered and recorded it
    auto seconds =
        std::chrono::duration<double>(clock::now() - edge_server::request_started())
            .count();
    // The route template, not the raw path: no ids or junk in the logs.
    auto route = route_template(req.method, req.path);
    auto model = route.find("{model}") != std::string::npos && req.matches.size() > 1
                     ? std::string{req.matches[1]}.substr(0, 128)
                     : std::string{};
    record_access(*stats_, res.get_header_value(request_id_header), gate.client_ip(req),
                  req.method, route, model, res.get_header_value("X-Model-Version"),
                  res.status, seconds, request_body_bytes);
  });

  request_limits limits{options_.max_instances_per_request, options_.max_image_pixels,
                        options_.default_timeout_ms, options_.max_timeout_ms};

  // Everything a predict call and a job submission share: validation, the
  // model's predictor (router or replica set) and spec from the directory,
  // and the preprocessed input batch.
  auto prepare = [this, limits](const httplib::Request& req, const std::string& text,
                                const std::string& model, const std::string& pinned) {
    require_json_body(req);
    if (!pinned.empty() && !is_version_name(pinned))
      throw api_error{ec::version_not_found, "version '" + pinned + "' does not exist",
                      "version"};
    auto body = parse_predict_body(text, limits);
    auto deadline = clock::now() + std::chrono::milliseconds{body.parameters.timeout_ms};
    auto model_entry = value_or_throw(directory_->find(model));
    auto input = build_input_batch(body, model_entry->spec.input, limits);
    return prepared_call{
        std::move(model_entry),
        predict_request{pinned, std::move(input), remaining(deadline).count()},
        body.parameters.output};
  };

  auto predict = [this, prepare](const httplib::Request& req, const std::string& body,
                                 httplib::Response& res, const std::string& model,
                                 const std::string& pinned) {
    auto call = prepare(req, body, model, pinned);
    auto timeout = std::chrono::milliseconds{call.request.timeout_ms} + reply_grace;
    // A client that leaves while its prediction waits withdraws it.
    call.request.cancel_key = next_cancel_key();
    edge_server::hangup_watch client_gone{
        [predictor = call.model->predictor, key = call.request.cancel_key] {
          caf::anon_send(predictor, atom::cancel_v, key);
        }};
    auto [reply] =
        value_or_throw(ask<predict_reply>(system_, call.model->predictor, timeout,
                                          atom::predict_v, std::move(call.request)));
    res.set_header("X-Model-Version", reply.version);
    if (!reply.node.empty())
      res.set_header("X-Served-By", reply.node);
    write_json(res, 200, format_answer(reply, call.model->spec, call.output));
  };

  auto submit_job = [this, prepare](const httplib::Request& req, const std::string& body,
                                    httplib::Response& res, const std::string& model,
                                    const std::string& pinned) {
    auto call = prepare(req, body, model, pinned);
    job_submission job{call.model->predictor, call.model->spec, std::move(call.request),
                       call.output};
    auto [id] = value_or_throw(ask<std::string>(system_, jobs_, control_timeout,
                                                atom::submit_v, std::move(job)));
    auto location = "/api/v1/jobs/" + id;
    res.set_header("Location", location);
    write_json(res, 202, {{"job_id", id}, {"status", "queued"}, {"location", location}});
  };

  server.Post(
      R"(/api/v1/models/([^/]+)/predict)",
      guarded_with_body(gate, access::predict, max_body,
                        [predict](const httplib::Request& req, const std::string& body,
                                  httplib::Response& res) {
                          predict(req, body, res, req.matches[1],
                                  req.get_header_value("X-Model-Version"));
                        }));
  server.Post(
      R"(/api/v1/models/([^/]+)/versions/([^/]+)/predict)",
      guarded_with_body(gate, access::predict, max_body,
                        [predict](const httplib::Request& req, const std::string& body,
                                  httplib::Response& res) {
                          predict(req, body, res, req.matches[1], req.matches[2]);
                        }));
  server.Post(
      R"(/api/v1/models/([^/]+)/jobs)",
      guarded_with_body(gate, access::predict, max_body,
                        [submit_job](const httplib::Request& req, const std::string& body,
                                     httplib::Response& res) {
                          submit_job(req, body, res, req.matches[1],
                                     req.get_header_value("X-Model-Version"));
                        }));
  server.Get(R"(/api/v1/jobs/([^/]+))",
             guarded(gate, access::predict,
                     [this](const httplib::Request& req, httplib::Response& res) {
                       auto [job] = value_or_throw(
                           ask<job_view>(system_, jobs_, control_timeout, atom::get_v,
                                         std::string{req.matches[1]}));
                       json body{{"job_id", job.id}, {"status", to_string(job.state)}};
                       switch (job.state) {
                         case job_state::queued:
                         case job_state::running:
                           write_json(res, 202, body);
                           return;
                         case job_state::succeeded:
                           body["result"] =
                               format_answer(job.reply, job.spec, job.output);
                           break;
                         case job_state::failed: {
                           auto error = to_api_error(job.error);
                           body["error"] = {{"code", code_name(error.code)},
                                            {"message", error.message}};
                           break;
                         }
                       }
                       write_json(res, 200, body);
                     }));
  server.Delete(R"(/api/v1/jobs/([^/]+))",
                guarded(gate, access::predict,
                        [this](const httplib::Request& req, httplib::Response& res) {
                          value_or_throw(ask<bool>(system_, jobs_, control_timeout,
                                                   atom::cancel_v,
                                                   std::string{req.matches[1]}));
                          res.status = 204;
                        }));

  // Admin routes. A reload answers once the new versions serve (or failed).
  auto admin_timeout = std::chrono::seconds{options_.load_timeout_s} + control_timeout;
  server.Post(R"(/api/v1/models/([^/]+)/reload)",
              guarded_with_body(
                  gate, access::admin, max_body,
                  [this, admin_timeout](const httplib::Request& req,
                                        const std::string& text, httplib::Response& res) {
                    auto body = parse_admin_body(req, text, {"version"});
                    auto version = body.contains("version")
                                       ? version_field(body["version"], "version")
                                       : std::string{};
                    auto [status] = value_or_throw(ask<model_status>(
                        system_, registry_, admin_timeout, atom::reload_v,
                        std::string{req.matches[1]}, version));
                    write_json(res, 200, to_json(status));
                  }));
  server.Post(R"(/api/v1/models/([^/]+)/versions/([^/]+)/unload)",
              guarded_with_body(gate, access::admin, max_body,
                                [this](const httplib::Request& req,
                                       const std::string& text, httplib::Response& res) {
                                  parse_admin_body(req, text, {});
                                  auto version = version_field(
                                      std::string{req.matches[2]}, "version");
                                  auto [status] = value_or_throw(ask<model_status>(
                                      system_, registry_, control_timeout, atom::unload_v,
                                      std::string{req.matches[1]}, version));
                                  write_json(res, 200, to_json(status));
                                }));
  server.Put(R"(/api/v1/models/([^/]+)/traffic)",
             guarded_with_body(gate, access::admin, max_body,
                               [this](const httplib::Request& req,
                                      const std::string& text, httplib::Response& res) {
                                 auto split = parse_traffic(
                                     parse_admin_body(req, text, {"default", "weights"}));
                                 auto [status] = value_or_throw(ask<model_status>(
                                     system_, registry_, control_timeout, atom::traffic_v,
                                     std::string{req.matches[1]}, std::move(split)));
                                 write_json(res, 200, to_json(status));
                               }));

  server.Get("/api/v1/models",
             guarded(gate, access::predict,
                     [this](const httplib::Request&, httplib::Response& res) {
                       auto [statuses] = value_or_throw(ask<std::vector<model_status>>(
                           system_, registry_, control_timeout, atom::list_v));
                       json models = json::array();
                       for (const auto& status : statuses)
                         models.push_back(to_json(status));
                       write_json(res, 200, {{"models", models}});
                     }));
  server.Get(R"(/api/v1/models/([^/]+))",
             guarded(gate, access::predict,
                     [this](const httplib::Request& req, httplib::Response& res) {
                       auto [status] = value_or_throw(ask<model_status>(
                           system_, registry_, control_timeout, atom::status_v,
                           std::string{req.matches[1]}));
                       write_json(res, 200, to_json(status));
                     }));

  server.Get("/metrics",
             guarded(gate, options_.metrics_require_key ? access::predict : access::open,
                     [this](const httplib::Request&, httplib::Response& res) {
                       if (auto jobs = ask<int64_t>(system_, jobs_, control_timeout,
                                                    atom::stats_v))
                         stats_->set_job_store_size(std::get<0>(*jobs));
                       stats_->set_open_connections(
                           static_cast<int64_t>(server_->open_connections()));
                       res.set_content(stats_->render(), "text/plain; version=0.0.4");
                     }));

  server.Get("/health", probe([this](const httplib::Request&, httplib::Response& res) {
               // Liveness: answers 200 whenever the process serves
               // HTTP.
               auto models = health_->current();
               write_json(res, 200,
                          {{"status", "healthy"},
                           {"model_loaded", models.model_loaded},
                           {"models", models.models},
                           {"draining", draining_.load()},
                           {"version", ACTORSERVE_VERSION}});
             }));

  server.Get("/ready", probe([this](const httplib::Request&, httplib::Response& res) {
               if (draining_)
                 throw api_error{ec::unavailable, "the server is shutting down", {}};
               auto [statuses] = value_or_throw(ask<std::vector<model_status>>(
                   system_, registry_, control_timeout, atom::list_v));
               for (const auto& status : statuses)
                 if (!is_serving(status))
                   throw api_error{ec::model_loading,
                                   "model " + status.name + " has no serving version",
                                   {}};
               write_json(res, 200, {{"status", "ready"}, {"models", statuses.size()}});
             }));
}

} // namespace actorserve
