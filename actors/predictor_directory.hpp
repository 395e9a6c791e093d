#pragma once

// Who answers each model's predictions, and the spec to pre- and
// post-process them with: the registry's table, published for HTTP threads
// to read without a message round trip per request (like TF Serving's
// serving map). One writer, the registry, from inside its handlers; many
// readers, the HTTP threads, once per request. Each read sees one immutable
// snapshot, so a reader never waits on the registry and never sees half an
// update.
//
// The table changes only when the set of predictors does: at start, and
// when a model that peers host gets its replica set. A reload or a traffic
// change happens inside the model's router and never touches this table,
// so it takes effect at once, as it did when HTTP asked the registry.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "messages/interfaces.hpp"

namespace actorserve {

struct directory_entry {
  predictor_actor predictor; // the router, or the replica set in a cluster
  model_spec spec;
};

class predictor_directory {
public:
  using table = std::map<std::string, directory_entry>;

  /// The model's entry (valid for as long as it is held, whatever is
  /// published later); model_not_found when there is no such model, and
  /// model_loading before the registry's first publish. Thread-safe.
  caf::expected<std::shared_ptr<const directory_entry>>
  find(const std::string& model) const;

  /// The models in the table now (none before the first publish).
  /// Thread-safe.
  std::vector<std::string> names() const;

  /// Replaces the table. Called by the registry only.
  void publish(table entries);

private:
  std::shared_ptr<const table> table_; // read and written atomically
};

} // namespace actorserve
