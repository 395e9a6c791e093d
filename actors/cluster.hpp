#pragma once

// Nodes meet through CAF's middleman: each node publishes its registry on the
// cluster port and connects to the peers named by --join. A connector (one
// per peer, detached: connecting blocks) joins the two registries and, when
// the peer goes away, tries again with backoff until it is back. With the
// three cluster TLS files every connection is mutual TLS (libcaf_openssl):
// a peer without a certificate from the same CA cannot connect either way.

#include <chrono>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>

#include "config/server_options.hpp"
#include "messages/interfaces.hpp"

namespace actorserve {

struct cluster_settings {
  std::string node; // this node's name
  bool tls = false;
  std::chrono::milliseconds join_timeout{5000};
  std::chrono::milliseconds retry_max{2000};
};

/// Loads the middleman (and OpenSSL when the TLS files are set) and turns
/// heartbeats on. Call before the actor system starts; throws config_error
/// when a TLS file cannot be read.
void configure_cluster(caf::actor_system_config& cfg, const server_options& options);

/// This node's name: --node-name, else cluster host:port.
std::string node_name(const server_options& options);

/// Publishes the registry on `host:port` (TLS when configured); returns the port.
caf::expected<uint16_t> publish_registry(caf::actor_system& system,
                                         const registry_actor& registry,
                                         const endpoint& where, bool tls);

/// Connects to a peer's registry; blocks until connected or refused.
caf::expected<registry_actor> connect_registry(caf::actor_system& system,
                                               const endpoint& peer, bool tls);

/// Spawns one connector per peer. Send them an exit to stop them.
std::vector<caf::actor> spawn_connectors(caf::actor_system& system,
                                         const registry_actor& local,
                                         const std::vector<endpoint>& peers,
                                         const cluster_settings& settings);

} // namespace actorserve
