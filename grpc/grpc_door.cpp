#include "grpc/grpc_door.hpp"

#include <algorithm>
#include <optional>

#include <caf/send.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "config/model_repository.hpp"
#include "grpc/inference.grpc.pb.h"
#include "grpc/oip_grpc_codec.hpp"
#include "http/bridge.hpp"
#include "http/door.hpp"
#include "messages/digest.hpp"
#include "protocols/oip_codec.hpp"
#include "protocols/oip_repository.hpp"
#include "protocols/standard_errors.hpp"
#include "telemetry/grpc_metrics.hpp"
#include "telemetry/logging.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using clock = std::chrono::steady_clock;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// Indices into grpc_rpcs.
enum rpc : size_t {
  server_live,
  server_ready,
  model_ready,
  server_metadata,
  model_metadata,
  model_infer,
  repository_index_rpc,
  repository_load,
  repository_unload,
};

std::string metadata_value(const CallbackServerContext* context, const char* key) {
  const auto& metadata = context->client_metadata();
  auto found = metadata.find(key);
  return found == metadata.end()
             ? std::string{}
             : std::string{found->second.data(), found->second.size()};
}

/// The address part of a gRPC peer: "ipv4:10.0.0.1:5000" -> "10.0.0.1",
/// "ipv6:[::1]:5000" -> "::1".
std::string peer_address(const std::string& peer) {
  auto address = peer.substr(peer.find(':') + 1);
  if (!address.empty() && address.front() == '[')
    return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

/// What a call's record needs: which RPC, since when, for whom.
struct call_info {
  call_info(size_t rpc, std::string model = {}) : rpc(rpc), model(std::move(model)) {}

  size_t rpc;
  std::string model;
  clock::time_point started = clock::now();
  std::string client;
  size_t input_bytes = 0;
};

} // namespace

class grpc_door::service final : public inference::GRPCInferenceService::CallbackService {
public:
  service(const route_context& context, metrics& stats)
      : context_(context), metrics_(stats), stats_(*stats.registry()) {}

  /// Ends a call with `error` (nullopt: OK): its status to the client, its
  /// metrics and access log line. Per-model prediction metrics count it under
  /// the HTTP status the OIP HTTP door answers for the same error.
  void finish(ServerUnaryReactor* reactor, const call_info& call,
              const std::optional<api_error>& error, const std::string& version = {}) {
    auto status = error ? grpc_status(*error) : grpc::Status::OK;
    auto seconds = std::chrono::duration<double>(clock::now() - call.started).count();
    stats_.observe(call.rpc, status.error_code(), seconds);
    // Only models the server hosts: a client's unknown name adds no series.
    if (call.rpc == model_infer && context_.directory->find(call.model))
      metrics_.observe_model_request(
          call.model, error ? standard_error_status(error->code) : 200, seconds);
    if (spdlog::should_log(spdlog::level::info))
      log_event(spdlog::level::info, "access",
                {{"protocol", "oip-grpc"},
                 {"client_ip", call.client},
                 {"method", "gRPC"},
                 {"route",
                  "/inference.GRPCInferenceService/" + std::string{grpc_rpcs[call.rpc]}},
                 {"model", call.model.substr(0, 128)},
                 {"version", version},
                 {"status", static_cast<int>(status.error_code())},
                 {"latency_ms", seconds * 1000.0},
                 {"input_bytes", call.input_bytes}});
    reactor->Finish(status);
  }

  /// Runs `work(reactor, call)` for a call that passes the gate (probes,
  /// access::open, pass without a token); a refusal, or an api_error `work`
  /// throws, ends the call with its status.
  template <class Work>
  void run_gated(ServerUnaryReactor* reactor, CallbackServerContext* context,
                 call_info& call, access required, Work work) {
    call.client = peer_address(context->peer());
    if (required != access::open)
      if (auto refused =
              context_.gate.check(metadata_value(context, "x-api-key"), call.client,
                                  metadata_value(context, "x-forwarded-for"), required)) {
        finish(reactor, call, refused->error);
        return;
      }
    try {
      work(reactor, call);
    } catch (const api_error& error) {
      finish(reactor, call, error);
    } catch (const std::exception& e) {
      finish(reactor, call, api_error{ec::internal, e.what(), {}});
    }
  }

  /// run_gated on gRPC's default reactor, for the calls without state of
  /// their own.
  template <class Work>
  ServerUnaryReactor* serve(CallbackServerContext* context, call_info call,
                            access required, Work work) {
    auto* reactor = context->DefaultReactor();
    run_gated(reactor, context, call, required, std::move(work));
    return reactor;
  }

  /// Asks the registry for `xs...` within `timeout` and ends the call with
  /// what `answer` makes of the reply (or with the error).
  template <class R, class Answer, class... Ts>
  void ask_registry(std::chrono::milliseconds timeout, ServerUnaryReactor* reactor,
                    call_info call, Answer answer, Ts&&... xs) {
    ask_async<R>(
        context_.system, context_.registry, timeout,
        [this, reactor, call = std::move(call),
         answer = std::move(answer)](caf::expected<std::tuple<R>> reply) {
          try {
            if (!reply)
              throw to_api_error(reply.error());
            answer(std::get<0>(*reply));
            finish(reactor, call, std::nullopt);
          } catch (const api_error& error) {
            finish(reactor, call, error);
          }
        },
        std::forward<Ts>(xs)...);
  }

  ServerUnaryReactor* ServerLive(CallbackServerContext* context,
                                 const inference::ServerLiveRequest*,
                                 inference::ServerLiveResponse* response) override {
    return serve(context, {server_live}, access::open, [&](auto* reactor, auto& call) {
      response->set_live(true);
      finish(reactor, call, std::nullopt);
    });
  }

  ServerUnaryReactor* ServerReady(CallbackServerContext* context,
                                  const inference::ServerReadyRequest*,
                                  inference::ServerReadyResponse* response) override {
    return serve(context, {server_ready}, access::open, [&](auto* reactor, auto& call) {
      ask_registry<std::vector<model_status>>(
          control_timeout, reactor, call,
          [this, response](const std::vector<model_status>& statuses) {
            response->set_ready(!context_.draining &&
                                std::all_of(statuses.begin(), statuses.end(),
                                            [](const auto& s) { return is_serving(s); }));
          },
          atom::list_v);
    });
  }

  ServerUnaryReactor* ModelReady(CallbackServerContext* context,
                                 const inference::ModelReadyRequest* request,
                                 inference::ModelReadyResponse* response) override {
    return serve(context, {model_ready, request->name()}, access::predict,
                 [&](auto* reactor, auto& call) {
                   check_pinned_version(request->version());
                   ask_registry<model_status>(
                       control_timeout, reactor, call,
                       [request, response](const model_status& status) {
                         check_version(status, request->version());
                         response->set_ready(is_ready(status, request->version()));
                       },
                       atom::status_v, request->name());
                 });
  }

  ServerUnaryReactor*
  ServerMetadata(CallbackServerContext* context, const inference::ServerMetadataRequest*,
                 inference::ServerMetadataResponse* response) override {
    return serve(context, {server_metadata}, access::predict,
                 [&](auto* reactor, auto& call) {
                   auto metadata = oip_server_metadata(ACTORSERVE_VERSION);
                   response->set_name(metadata["name"]);
                   response->set_version(metadata["version"]);
                   for (const auto& extension : metadata["extensions"])
                     response->add_extensions(extension);
                   finish(reactor, call, std::nullopt);
                 });
  }

  ServerUnaryReactor* ModelMetadata(CallbackServerContext* context,
                                    const inference::ModelMetadataRequest* request,
                                    inference::ModelMetadataResponse* response) override {
    return serve(context, {model_metadata, request->name()}, access::predict,
                 [&](auto* reactor, auto& call) {
                   check_pinned_version(request->version());
                   ask_registry<model_status>(
                       control_timeout, reactor, call,
                       [this, request, response](const model_status& status) {
                         check_version(status, request->version());
                         auto model =
                             value_or_throw(context_.directory->find(status.name));
                         format_grpc_model_metadata(
                             model->spec,
                             request->version().empty()
                                 ? version_names(status)
                                 : std::vector<std::string>{request->version()},
                             *response);
                       },
                       atom::status_v, request->name());
                 });
  }

  ServerUnaryReactor* ModelInfer(CallbackServerContext* context,
                                 const inference::ModelInferRequest* request,
                                 inference::ModelInferResponse* response) override;

  ServerUnaryReactor*
  RepositoryIndex(CallbackServerContext* context,
                  const inference::RepositoryIndexRequest* request,
                  inference::RepositoryIndexResponse* response) override {
    return serve(context, {repository_index_rpc}, access::predict,
                 [&](auto* reactor, auto& call) {
                   // Read on this thread, not on the registry's.
                   auto folders = scan_repository(context_.options.model_repository);
                   ask_registry<std::vector<model_status>>(
                       control_timeout, reactor, call,
                       [request, response, folders = std::move(folders)](
                           const std::vector<model_status>& statuses) {
                         for (const auto& entry : repository_index(folders, statuses)) {
                           if (request->ready() && entry.state != "READY")
                             continue;
                           auto* model = response->add_models();
                           model->set_name(entry.name);
                           model->set_version(entry.version);
                           model->set_state(entry.state);
                           model->set_reason(entry.reason);
                         }
                       },
                       atom::list_v);
                 });
  }

  ServerUnaryReactor*
  RepositoryModelLoad(CallbackServerContext* context,
                      const inference::RepositoryModelLoadRequest* request,
                      inference::RepositoryModelLoadResponse*) override {
    return serve(context, {repository_load, request->model_name()}, access::admin,
                 [&](auto* reactor, auto& call) {
                   ask_registry<model_status>(
                       model_load_timeout(context_.options), reactor, call,
                       [](const model_status&) {}, atom::load_v, request->model_name());
                 });
  }

  ServerUnaryReactor*
  RepositoryModelUnload(CallbackServerContext* context,
                        const inference::RepositoryModelUnloadRequest* request,
                        inference::RepositoryModelUnloadResponse*) override {
    return serve(context, {repository_unload, request->model_name()}, access::admin,
                 [&](auto* reactor, auto& call) {
                   ask_registry<model_status>(
                       control_timeout, reactor, call, [](const model_status&) {},
                       atom::unload_v, request->model_name());
                 });
  }

  const route_context& context() const { return context_; }

private:
  const route_context& context_;
  metrics& metrics_;
  grpc_metrics stats_;
};

namespace {

/// One ModelInfer call, from the gate to its reply. It lives until gRPC is
/// done with it (OnDone); its reply comes on the thread of the actor that
/// answers (or of CAF's clock at the deadline), and a cancelled call
/// withdraws its request like an HTTP client that went away.
class infer_call final : public ServerUnaryReactor {
public:
  infer_call(grpc_door::service& door, CallbackServerContext* context,
             const inference::ModelInferRequest* request,
             inference::ModelInferResponse* response)
      : door_(door), context_(context), request_(request),
        response_(response), call_{model_infer, request->model_name()} {
    call_.input_bytes = request->ByteSizeLong();
  }

  void start() {
    door_.run_gated(this, context_, call_, access::predict,
                    [this](auto*, auto&) { ask_prediction(); });
  }

  void OnCancel() override {
    if (cancel_key_ != 0)
      caf::anon_send(model_->predictor, atom::cancel_v, cancel_key_);
  }

  void OnDone() override { delete this; }

private:
  void ask_prediction() {
    const auto& context = door_.context();
    const auto& pinned = request_->model_version();
    check_pinned_version(pinned);
    model_ = value_or_throw(context.directory->find(request_->model_name()));
    parsed_ = parse_grpc_infer_request(*request_, model_->spec, context.limits);
    auto timeout = std::chrono::milliseconds{parsed_.timeout_ms};
    if (context_->deadline() != std::chrono::system_clock::time_point::max())
      timeout =
          std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                context_->deadline() - std::chrono::system_clock::now()));
    if (timeout.count() <= 0)
      throw api_error{ec::deadline_exceeded, "the call's deadline has passed", {}};
    predict_request prediction{pinned, std::move(parsed_.input), timeout.count()};
    prediction.priority = parsed_.priority;
    if (model_->spec.response_cache)
      prediction.input_digest = tensor_digest(prediction.input);
    prediction.cancel_key = cancel_key_ = next_cancel_key();
    ask_async<predict_reply>(
        context.system, model_->predictor, timeout + reply_grace,
        [this](caf::expected<std::tuple<predict_reply>> reply) { answer(reply); },
        atom::predict_v, std::move(prediction));
  }

  void answer(caf::expected<std::tuple<predict_reply>>& reply) {
    try {
      if (!reply)
        throw to_api_error(reply.error());
      const auto& prediction = std::get<0>(*reply);
      format_grpc_infer_response(prediction, model_->spec, *request_, parsed_,
                                 *response_);
      door_.finish(this, call_, std::nullopt, prediction.version);
    } catch (const api_error& error) {
      door_.finish(this, call_, error);
    }
  }

  grpc_door::service& door_;
  CallbackServerContext* context_;
  const inference::ModelInferRequest* request_;
  inference::ModelInferResponse* response_;
  call_info call_;
  std::shared_ptr<const directory_entry> model_;
  grpc_infer_request parsed_;
  uint64_t cancel_key_ = 0;
};

} // namespace

ServerUnaryReactor*
grpc_door::service::ModelInfer(CallbackServerContext* context,
                               const inference::ModelInferRequest* request,
                               inference::ModelInferResponse* response) {
  auto* call = new infer_call(*this, context, request, response);
  call->start();
  return call;
}

grpc_door::grpc_door(const route_context& context, metrics& stats)
    : service_(std::make_unique<service>(context, stats)) {}

grpc_door::~grpc_door() = default;

int grpc_door::start() {
  const auto& options = service_->context().options;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.host + ":" + std::to_string(options.grpc_port),
                           grpc::InsecureServerCredentials(), &port);
  // Messages as large as HTTP bodies may be (gRPC's default is 4 MiB).
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<int64_t>(options.max_body_bytes, std::numeric_limits<int>::max())));
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  return server_ && port > 0 ? port : -1;
}

void grpc_door::stop(std::chrono::system_clock::time_point deadline) {
  if (server_)
    server_->Shutdown(deadline);
}

} // namespace actorserve
