#pragma once

// Reading the model repository layout (../shared/API.md, "Model repository"):
//   <repository>/<model>/config.json, labels.txt, <version>/model.pt
// Called once at start (and on rescans) by the registry, off any hot path.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/model_config.hpp"

namespace actorserve {

/// Orders version names ("2" < "10") numerically.
struct version_order {
  bool operator()(const std::string& lhs, const std::string& rhs) const;
};

/// True for a positive integer written without leading zeros (at most 18
/// digits): the only version names accepted from clients or found in a
/// repository.
bool is_version_name(const std::string& text);

/// One model folder as found on disk.
struct model_folder {
  std::string name;
  std::filesystem::path directory;
  std::vector<std::string> versions; // digit-named folders holding model.pt, ascending
  model_config config;               // valid when error is empty
  std::vector<std::string> labels;   // from output.labels, if set
  std::string error;                 // why config.json or the labels are unusable
};

/// The version folders of `directory` that hold a model.pt, in numeric order.
/// Only digit names count; folders that are symlinks leading outside
/// `directory` are skipped.
std::vector<std::string> find_versions(const std::filesystem::path& directory);

/// Reads one model folder: its versions, config.json and labels (a config
/// or labels file that cannot be used sets `error`, naming the key).
model_folder read_model_folder(const std::filesystem::path& directory);

/// The model folder `name` of `repository`, read as scan_repository reads it;
/// nothing when `name` is not a plain folder name, or the folder has no
/// config.json or no version.
std::optional<model_folder> find_model_folder(const std::filesystem::path& repository,
                                              const std::string& name);

/// Every model folder of `repository`, by name. Folders without config.json or
/// without any version are skipped with a warning; files at the root are
/// ignored. A config.json that fails to parse yields a folder with `error` set.
/// Throws config_error when `repository` is not a readable directory.
std::vector<model_folder> scan_repository(const std::filesystem::path& repository);

} // namespace actorserve
