#pragma once

// The model repository and readiness as the Open Inference Protocol reports
// them, for its HTTP routes and its gRPC service alike: the repository index
// (every version folder on disk, loaded or not, with the state the registry
// reports) and whether a model or one of its versions serves. Pure functions.

#include <string>
#include <vector>

#include "config/model_repository.hpp"
#include "messages/payloads.hpp"

namespace actorserve {

/// One entry of the repository index.
struct repository_entry {
  std::string name;
  std::string version; // empty for a folder whose config cannot be used
  std::string state;   // READY, LOADING, UNLOADING or UNAVAILABLE
  std::string reason;  // why it is not READY, if known
};

/// Every version folder of the repository (`folders`, as scan_repository
/// found them), with its state in `loaded` (the registry's statuses; a
/// folder with none is UNAVAILABLE "not loaded").
std::vector<repository_entry> repository_index(const std::vector<model_folder>& folders,
                                               const std::vector<model_status>& loaded);

/// True when the model serves: any version (`version` empty) or that one.
bool is_ready(const model_status& status, const std::string& version);

} // namespace actorserve
