#pragma once

// The HTTP front: the edge's workers turn requests into messages to the
// registry and routers and their replies into JSON. It holds no model state
// (only /health's view of it, see model_health.hpp) and caches no actor
// handle across requests: every prediction looks its model up in the
// registry's predictor directory, and versions are chosen by the router,
// which is what lets a reload take effect at once.
// Handlers run on HTTP threads and block only in ask(), always with a
// deadline.

#include <atomic>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/predictor_directory.hpp"
#include "config/server_options.hpp"
#include "messages/interfaces.hpp"

namespace actorserve {

class client_address_resolver;
class edge_server;
class key_store;
class model_health_view;
class metrics;
class rate_limiter;
struct route_context;

class http_server {
public:
  http_server(caf::actor_system& system, registry_actor registry,
              std::shared_ptr<const predictor_directory> directory, job_store_actor jobs,
              std::shared_ptr<const key_store> keys, std::shared_ptr<metrics> stats,
              server_options options);
  ~http_server();

  /// Binds host:port (port 0 picks a free one); returns the port, or -1.
  int bind();

  /// Serves until stop(); call after bind(), on its own thread.
  bool serve();

  /// Readiness turns 503 from now on (the first step of a graceful stop).
  void begin_drain() { draining_ = true; }

  /// Closes the listener; requests in flight finish, then serve() returns.
  void stop();

  /// What the routes share (gate, limits, actors), for the other doors
  /// (grpc/) to serve through the same: valid while the server lives.
  const route_context& context() const { return *context_; }

private:
  void install_routes();

  caf::actor_system& system_;
  registry_actor registry_;
  std::shared_ptr<const predictor_directory> directory_;
  job_store_actor jobs_;
  std::shared_ptr<const key_store> keys_;
  std::shared_ptr<metrics> stats_;
  server_options options_;
  std::unique_ptr<edge_server> server_;
  std::unique_ptr<rate_limiter> limiter_;
  std::unique_ptr<client_address_resolver> clients_;
  std::unique_ptr<model_health_view> health_;
  std::unique_ptr<route_context> context_; // what the routes share
  std::atomic<bool> draining_{false};
};

} // namespace actorserve
