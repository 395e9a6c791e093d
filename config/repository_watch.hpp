#pragma once

// The memory of the repository poll (--repository-poll-s): what each scan of
// the model repository found, and what the registry should do about it.
// Plain data and the file system, no actors: the registry owns one and calls
// scan() from its poll timer (one thread at a time).
//
// The stability rule: a model.pt or config.json counts only once it kept the
// same size and modification time from one scan to the next, so a file that
// is still being copied is never loaded half-written.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace actorserve {

/// What a scan sees of one file.
struct file_stamp {
  std::uintmax_t size = 0;
  std::filesystem::file_time_type mtime{};

  bool operator==(const file_stamp& other) const {
    return size == other.size && mtime == other.mtime;
  }
  bool operator!=(const file_stamp& other) const { return !(*this == other); }
};

/// Remembers each file's stamp from the previous scan.
class stability_rule {
public:
  /// Records `stamp` for `file` in this scan; true when the previous scan saw
  /// the same stamp (the file kept its size and mtime for one interval).
  bool settled(const std::string& file, const file_stamp& stamp);

  /// Ends a scan: files not seen in it are forgotten.
  void end_scan();

private:
  std::map<std::string, file_stamp> previous_;
  std::map<std::string, file_stamp> current_;
};

struct version_ref {
  std::string model;
  std::string version;

  bool operator==(const version_ref& other) const {
    return model == other.model && version == other.version;
  }
};

/// What one scan asks of the registry. Each change is reported once.
struct poll_actions {
  std::vector<std::string> gone_models;     // folder gone: unload the model
  std::vector<version_ref> gone_versions;   // version folder gone: drain, unload
  std::vector<std::string> new_models;      // a new model folder, settled: load it
  std::vector<std::string> changed_configs; // config.json changed: reload the model
  std::vector<version_ref> new_versions;    // new or rewritten model.pt: load it

  bool empty() const {
    return gone_models.empty() && gone_versions.empty() && new_models.empty() &&
           changed_configs.empty() && new_versions.empty();
  }
};

class repository_watch {
public:
  explicit repository_watch(std::filesystem::path repository);

  /// Takes what is on disk now as loaded (the registry loads it at start).
  void prime();

  /// Scans the repository. A model acts only once every one of its files
  /// settled (a gone version folder is reported at once); a new model needs
  /// a config.json and a version. What failed to load is tried again only
  /// when its files change.
  poll_actions scan();

private:
  struct model_files {
    file_stamp config;
    std::map<std::string, file_stamp> versions; // version -> its model.pt
    bool settled = true;
  };

  std::map<std::string, model_files> look();

  std::filesystem::path repository_;
  stability_rule rule_;
  std::map<std::string, model_files> known_; // as last acted on
};

} // namespace actorserve
