#include "protocols/oip_repository.hpp"

#include <algorithm>

namespace actorserve {

namespace {

std::string repository_state(version_state state) {
  switch (state) {
    case version_state::available:
      return "READY";
    case version_state::loading:
      return "LOADING";
    case version_state::draining:
      return "UNLOADING";
    default:
      return "UNAVAILABLE";
  }
}

repository_entry version_entry(const std::string& model, const std::string& version,
                               const model_status* status) {
  repository_entry entry{model, version, "UNAVAILABLE", "not loaded"};
  if (status == nullptr)
    return entry;
  for (const auto& loaded : status->versions)
    if (loaded.version == version) {
      entry.state = repository_state(loaded.state);
      entry.reason = loaded.error;
    }
  return entry;
}

} // namespace

std::vector<repository_entry> repository_index(const std::vector<model_folder>& folders,
                                               const std::vector<model_status>& loaded) {
  std::vector<repository_entry> index;
  for (const auto& folder : folders) {
    if (!folder.error.empty()) {
      index.push_back({folder.name, {}, "UNAVAILABLE", folder.error});
      continue;
    }
    auto status = std::find_if(loaded.begin(), loaded.end(),
                               [&](const auto& s) { return s.name == folder.name; });
    for (const auto& version : folder.versions)
      index.push_back(version_entry(folder.name, version,
                                    status == loaded.end() ? nullptr : &*status));
  }
  return index;
}

bool is_ready(const model_status& status, const std::string& version) {
  return std::any_of(status.versions.begin(), status.versions.end(), [&](const auto& v) {
    return v.state == version_state::available &&
           (version.empty() || v.version == version);
  });
}

} // namespace actorserve
