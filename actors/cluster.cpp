#include "actors/cluster.hpp"

#include <fstream>

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "telemetry/logging.hpp"

// libcaf_openssl 0.17 never clears OpenSSL's per-thread error queue, and
// every TLS connection of a node runs on the middleman's one thread. So one
// failed handshake (a plain or foreign-CA peer knocking) leaves an error
// that the next SSL_get_error of a healthy connection reports as its own,
// and CAF drops that connection. This definition takes the place of
// libssl's for libcaf_openssl (the executable's symbols come first): it asks
// libssl, then clears the queue, so an error stays with its own connection.
extern "C" int SSL_get_error(const SSL* ssl, int ret) {
  using function = int (*)(const SSL*, int);
  static const auto libssl_get_error =
      reinterpret_cast<function>(::dlsym(RTLD_NEXT, "SSL_get_error"));
  auto result = libssl_get_error(ssl, ret);
  ERR_clear_error();
  return result;
}

namespace actorserve {

namespace {

void require_readable(const std::string& file, const std::string& key) {
  if (!std::ifstream{file})
    throw config_error(key + ": cannot read " + file);
}

std::string to_text(const endpoint& where) {
  return where.host + ":" + std::to_string(where.port);
}

struct connector_state {
  static inline const char* name = "cluster_connector";
  std::chrono::milliseconds backoff{100};
  bool reported_absent = false; // log the first failed attempt only
};

/// Tries to join `peer` now; on failure tries again after a backoff that
/// doubles up to settings.retry_max. Once joined, monitors the peer and
/// starts over when it goes away.
caf::behavior connector(caf::stateful_actor<connector_state>* self, registry_actor local,
                        endpoint peer, cluster_settings settings) {
  auto retry_later = [=] {
    auto& backoff = self->state.backoff;
    self->delayed_send(self, backoff, atom::join_v);
    backoff = std::min(backoff * 2, settings.retry_max);
  };
  self->set_down_handler([=](caf::down_msg& msg) {
    log_event(spdlog::level::warn, "peer_lost",
              {{"peer", to_text(peer)}, {"reason", caf::to_string(msg.reason)}});
    self->state.backoff = std::chrono::milliseconds{100};
    retry_later();
  });
  self->send(self, atom::join_v);
  return {
      [=](atom::join) {
        auto remote = connect_registry(self->home_system(), peer, settings.tls);
        if (!remote) {
          if (!self->state.reported_absent)
            log_event(spdlog::level::warn, "peer_unreachable",
                      {{"peer", to_text(peer)},
                       {"reason", self->home_system().render(remote.error())}});
          self->state.reported_absent = true;
          retry_later();
          return;
        }
        self->request(*remote, settings.join_timeout, atom::join_v,
                      caf::actor_cast<caf::strong_actor_ptr>(local), settings.node)
            .then(
                [=](std::string& peer_node) {
                  self->monitor(*remote);
                  caf::anon_send(local, atom::join_v,
                                 caf::actor_cast<caf::strong_actor_ptr>(*remote),
                                 peer_node);
                  self->state.backoff = std::chrono::milliseconds{100};
                  self->state.reported_absent = false;
                  log_event(spdlog::level::info, "peer_joined",
                            {{"peer", to_text(peer)}, {"node", peer_node}});
                },
                [=](caf::error& err) {
                  log_event(spdlog::level::warn, "peer_join_failed",
                            {{"peer", to_text(peer)},
                             {"reason", self->home_system().render(err)}});
                  retry_later();
                });
      },
  };
}

} // namespace

void configure_cluster(caf::actor_system_config& cfg, const server_options& options) {
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{std::chrono::milliseconds{options.cluster_heartbeat_ms}});
  cfg.set("middleman.connection-timeout",
          caf::timespan{std::chrono::milliseconds{options.cluster_timeout_ms}});
  if (!cluster_tls_enabled(options))
    return;
  require_readable(options.cluster_tls_cert, "cluster_tls_cert");
  require_readable(options.cluster_tls_key, "cluster_tls_key");
  require_readable(options.cluster_tls_ca, "cluster_tls_ca");
  cfg.load<caf::openssl::manager>();
  cfg.openssl_certificate = options.cluster_tls_cert;
  cfg.openssl_key = options.cluster_tls_key;
  cfg.openssl_cafile = options.cluster_tls_ca;
}

std::string node_name(const server_options& options) {
  if (!options.node_name.empty())
    return options.node_name;
  return options.cluster_host + ":" + std::to_string(options.cluster_port);
}

caf::expected<uint16_t> publish_registry(caf::actor_system& system,
                                         const registry_actor& registry,
                                         const endpoint& where, bool tls) {
  if (tls)
    return caf::openssl::publish(registry, where.port, where.host.c_str(), true);
  return system.middleman().publish(registry, where.port, where.host.c_str(), true);
}

caf::expected<registry_actor> connect_registry(caf::actor_system& system,
                                               const endpoint& peer, bool tls) {
  if (tls)
    return caf::openssl::remote_actor<registry_actor>(system, peer.host, peer.port);
  return system.middleman().remote_actor<registry_actor>(peer.host, peer.port);
}

std::vector<caf::actor> spawn_connectors(caf::actor_system& system,
                                         const registry_actor& local,
                                         const std::vector<endpoint>& peers,
                                         const cluster_settings& settings) {
  std::vector<caf::actor> connectors;
  for (const auto& peer : peers)
    connectors.push_back(system.spawn<caf::detached>(connector, local, peer, settings));
  return connectors;
}

} // namespace actorserve
