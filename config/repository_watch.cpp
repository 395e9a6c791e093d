#include "config/repository_watch.hpp"

#include <system_error>

#include "config/model_repository.hpp"

namespace fs = std::filesystem;

namespace actorserve {

namespace {

/// The stamp of a regular file; false when there is none (gone, unreadable).
bool stamp_of(const fs::path& file, file_stamp& stamp) {
  std::error_code err;
  if (!fs::is_regular_file(file, err))
    return false;
  stamp.size = fs::file_size(file, err);
  if (err)
    return false;
  stamp.mtime = fs::last_write_time(file, err);
  return !err;
}

} // namespace

bool stability_rule::settled(const std::string& file, const file_stamp& stamp) {
  current_[file] = stamp;
  auto before = previous_.find(file);
  return before != previous_.end() && before->second == stamp;
}

void stability_rule::end_scan() {
  previous_ = std::move(current_);
  current_.clear();
}

repository_watch::repository_watch(fs::path repository)
    : repository_(std::move(repository)) {}

std::map<std::string, repository_watch::model_files> repository_watch::look() {
  std::map<std::string, model_files> found;
  std::error_code err;
  for (const auto& item : fs::directory_iterator(repository_, err)) {
    if (!item.is_directory(err))
      continue;
    auto name = item.path().filename().string();
    model_files files;
    auto config_file = item.path() / "config.json";
    if (!stamp_of(config_file, files.config))
      continue;
    files.settled = rule_.settled(config_file.string(), files.config);
    for (const auto& version : find_versions(item.path())) {
      auto model_file = item.path() / version / "model.pt";
      file_stamp stamp;
      if (!stamp_of(model_file, stamp))
        continue;
      files.versions[version] = stamp;
      files.settled = rule_.settled(model_file.string(), stamp) && files.settled;
    }
    if (!files.versions.empty())
      found.emplace(std::move(name), std::move(files));
  }
  rule_.end_scan();
  return found;
}

void repository_watch::prime() {
  known_ = look();
}

poll_actions repository_watch::scan() {
  poll_actions actions;
  auto found = look();
  for (auto i = known_.begin(); i != known_.end();) {
    if (found.count(i->first) == 0) {
      actions.gone_models.push_back(i->first);
      i = known_.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& [name, files] : found) {
    auto known = known_.find(name);
    if (known == known_.end()) {
      if (files.settled) {
        actions.new_models.push_back(name);
        known_.emplace(name, files);
      }
      continue;
    }
    auto& remembered = known->second.versions;
    for (auto v = remembered.begin(); v != remembered.end();) {
      if (files.versions.count(v->first) == 0) {
        actions.gone_versions.push_back({name, v->first});
        v = remembered.erase(v);
      } else {
        ++v;
      }
    }
    if (!files.settled)
      continue;
    if (files.config != known->second.config) {
      // The reload with the new config loads every version on disk.
      actions.changed_configs.push_back(name);
      known->second = files;
      continue;
    }
    for (const auto& [version, stamp] : files.versions) {
      auto before = remembered.find(version);
      if (before == remembered.end() || before->second != stamp) {
        actions.new_versions.push_back({name, version});
        remembered[version] = stamp;
      }
    }
  }
  return actions;
}

} // namespace actorserve
