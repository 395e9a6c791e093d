#include "actors/predictor_directory.hpp"

#include <atomic>

#include "messages/error.hpp"

namespace actorserve {

caf::expected<std::shared_ptr<const directory_entry>>
predictor_directory::find(const std::string& model) const {
  auto current = std::atomic_load(&table_);
  if (!current)
    return make_error(ec::model_loading, "the server is starting");
  auto i = current->find(model);
  if (i == current->end())
    return make_error(ec::model_not_found, "model '" + model + "' does not exist");
  // Shares ownership of the whole table, points at the one entry.
  return std::shared_ptr<const directory_entry>{current, &i->second};
}

std::vector<std::string> predictor_directory::names() const {
  std::vector<std::string> result;
  if (auto current = std::atomic_load(&table_))
    for (const auto& entry : *current)
      result.push_back(entry.first);
  return result;
}

void predictor_directory::publish(table entries) {
  std::atomic_store(
      &table_, std::shared_ptr<const table>{std::make_shared<table>(std::move(entries))});
}

} // namespace actorserve
