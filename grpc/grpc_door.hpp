#pragma once

// The gRPC door: inference.GRPCInferenceService (grpc/inference.proto) on
// --host:--grpc-port, the Open Inference Protocol of ../shared/API.md over
// gRPC. It shares the HTTP doors' gate (x-api-key metadata, rate limits),
// limits, predictor directory and prediction path (route_context). Calls use
// gRPC's callback API: no thread waits for a call; each reply is written
// from the actor that answers it (http/bridge.hpp ask_async).
//
// Threading: start() and stop() are called by main; the RPC handlers run on
// gRPC's own threads and on CAF's.

#include <chrono>
#include <memory>

namespace grpc {
class Server;
}

namespace actorserve {

class metrics;
struct route_context;

class grpc_door {
public:
  /// `context` and `stats` must outlive the door.
  grpc_door(const route_context& context, metrics& stats);
  ~grpc_door();

  grpc_door(const grpc_door&) = delete;
  grpc_door& operator=(const grpc_door&) = delete;

  /// Listens on --host:--grpc-port and serves; returns the bound port, or -1
  /// when it cannot listen.
  int start();

  /// Graceful drain: new calls are refused, calls in flight get until
  /// `deadline` to finish, the rest are cancelled; returns once all ended.
  void stop(std::chrono::system_clock::time_point deadline);

  /// The service behind the door (defined in grpc_door.cpp).
  class service;

private:
  std::unique_ptr<service> service_;
  std::unique_ptr<grpc::Server> server_;
};

} // namespace actorserve
