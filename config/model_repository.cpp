#include "config/model_repository.hpp"

#include <algorithm>
#include <system_error>

#include <spdlog/spdlog.h>

namespace fs = std::filesystem;

namespace actorserve {

namespace {

/// True when `path` resolves to a place inside `root` (both canonical).
bool stays_inside(const fs::path& path, const fs::path& root) {
  std::error_code err;
  auto resolved = fs::weakly_canonical(path, err);
  if (err)
    return false;
  auto [root_end, path_it] =
      std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end());
  return root_end == root.end();
}

model_folder read_folder(const fs::path& directory, std::vector<std::string> versions) {
  model_folder folder;
  folder.name = directory.filename().string();
  folder.directory = directory;
  folder.versions = std::move(versions);
  try {
    folder.config = load_model_config(directory / "config.json");
    if (!folder.config.output.labels.empty())
      folder.labels = load_labels(directory / folder.config.output.labels);
  } catch (const config_error& e) {
    folder.error = e.what();
  }
  return folder;
}

} // namespace

bool version_order::operator()(const std::string& lhs, const std::string& rhs) const {
  // Version names have no leading zeros, so the longer one is the larger.
  if (lhs.size() != rhs.size())
    return lhs.size() < rhs.size();
  return lhs < rhs;
}

bool is_version_name(const std::string& text) {
  return !text.empty() && text.size() <= 18 && text.front() != '0' &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> find_versions(const fs::path& directory) {
  std::vector<std::string> versions;
  std::error_code err;
  auto root = fs::weakly_canonical(directory, err);
  if (err)
    return versions;
  for (const auto& item : fs::directory_iterator(directory, err)) {
    auto name = item.path().filename().string();
    if (!is_version_name(name) || !item.is_directory(err))
      continue;
    auto model_file = item.path() / "model.pt";
    if (fs::is_regular_file(model_file, err) && stays_inside(model_file, root))
      versions.push_back(name);
  }
  std::sort(versions.begin(), versions.end(), version_order{});
  return versions;
}

model_folder read_model_folder(const fs::path& directory) {
  return read_folder(directory, find_versions(directory));
}

std::optional<model_folder> find_model_folder(const fs::path& repository,
                                              const std::string& name) {
  if (name.empty() || name.front() == '.' || fs::path(name).filename() != name)
    return std::nullopt;
  std::error_code err;
  auto directory = repository / name;
  auto root = fs::weakly_canonical(repository, err);
  if (err || !fs::is_directory(directory, err) || !stays_inside(directory, root) ||
      !fs::is_regular_file(directory / "config.json", err))
    return std::nullopt;
  auto folder = read_model_folder(directory);
  if (folder.versions.empty())
    return std::nullopt;
  return folder;
}

std::vector<model_folder> scan_repository(const fs::path& repository) {
  std::error_code err;
  if (!fs::is_directory(repository, err))
    throw config_error(repository.string() + ": model repository is not a directory");
  std::vector<fs::path> directories;
  for (const auto& item : fs::directory_iterator(repository, err))
    if (item.is_directory(err))
      directories.push_back(item.path());
  if (err)
    throw config_error(repository.string() + ": cannot read: " + err.message());
  std::sort(directories.begin(), directories.end());
  std::vector<model_folder> models;
  for (const auto& directory : directories) {
    if (!fs::is_regular_file(directory / "config.json", err)) {
      spdlog::warn("skipping {}: no config.json", directory.string());
      continue;
    }
    auto versions = find_versions(directory);
    if (versions.empty()) {
      spdlog::warn("skipping {}: no <version>/model.pt", directory.string());
      continue;
    }
    models.push_back(read_folder(directory, std::move(versions)));
  }
  return models;
}

} // namespace actorserve
