#pragma once

// The router's version table: version -> batcher and state, the default
// version and the traffic weights, and the choice of version for a request.
// Plain data owned by one router actor; changed only from its handlers.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <caf/expected.hpp>

#include "config/compute_plan.hpp"
#include "config/model_repository.hpp" // version_order
#include "messages/interfaces.hpp"

namespace actorserve {

class version_table {
public:
  struct entry {
    batcher_actor batcher;
    version_status status;
    int64_t current_weight = 0; // smooth weighted round-robin state
  };

  /// Adds (or replaces) a version in state `loading`, to run as `plan` says.
  void add(const std::string& version, batcher_actor batcher,
           const compute_plan& plan = {});
  void mark_failed(const std::string& version, std::string error);
  /// Takes the version out of service; returns the batcher it had.
  batcher_actor retire(const std::string& version, version_state state);
  /// Swaps in a freshly loaded batcher for a version; returns the old one.
  batcher_actor replace(const std::string& version, batcher_actor batcher,
                        int64_t load_time_ms, const compute_plan& plan = {});
  bool is_available(const std::string& version) const;
  /// The version whose current batcher is `addr`, if any.
  std::optional<std::string> version_of(const caf::actor_addr& addr) const;
  size_t available_count() const;

  /// Sets the configured default ("" = highest available) and the weights
  /// for unpinned requests (empty = all to the default).
  void set_traffic(std::string default_version, std::map<std::string, int32_t> weights);

  /// The batcher for a request: the pinned version if there is one,
  /// else by traffic weights (smooth weighted round-robin over the available
  /// weighted versions, exact over a window), else the default, else the
  /// highest available. Errors: version_not_found, model_loading,
  /// unavailable.
  caf::expected<std::pair<std::string, batcher_actor>> choose(const std::string& pinned);

  /// The default an unpinned request without weights gets: the configured
  /// one if available, else the highest available; "" when none is.
  std::string effective_default() const;

  model_status status(const std::string& model) const;

  const entry* find(const std::string& version) const;

private:
  caf::error not_serving_error() const;
  std::optional<std::string> choose_weighted();

  std::map<std::string, entry, version_order> versions_;
  std::string default_version_;
  std::map<std::string, int32_t> weights_;
};

} // namespace actorserve
