#include "messages/interfaces.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

namespace actorserve {

int64_t row_size(const tensor& x) {
  if (x.shape.empty())
    return 0;
  return std::accumulate(x.shape.begin() + 1, x.shape.end(), int64_t{1},
                         std::multiplies<>{});
}

tensor slice_rows(const tensor& x, int64_t first, int64_t count) {
  auto width = row_size(x);
  tensor result;
  result.shape = x.shape;
  result.shape[0] = count;
  auto begin = x.values.begin() + first * width;
  result.values.assign(begin, begin + count * width);
  return result;
}

tensor concat_rows(const std::vector<tensor>& parts) {
  tensor result;
  if (parts.empty())
    return result;
  result.shape = parts.front().shape;
  result.shape[0] = 0;
  size_t total = 0;
  for (const auto& part : parts)
    total += part.values.size();
  result.values.reserve(total);
  for (const auto& part : parts) {
    result.shape[0] += part.shape[0];
    result.values.insert(result.values.end(), part.values.begin(), part.values.end());
  }
  return result;
}

std::string to_string(version_state state) {
  switch (state) {
    case version_state::loading:
      return "loading";
    case version_state::available:
      return "available";
    case version_state::draining:
      return "draining";
    case version_state::failed:
      return "failed";
    case version_state::unloaded:
      return "unloaded";
  }
  return "unknown";
}

std::string to_string(job_state state) {
  switch (state) {
    case job_state::queued:
      return "queued";
    case job_state::running:
      return "running";
    case job_state::succeeded:
      return "succeeded";
    case job_state::failed:
      return "failed";
  }
  return "unknown";
}

bool is_serving(const model_status& status) {
  return std::any_of(
      status.versions.begin(), status.versions.end(),
      [](const version_status& v) { return v.state == version_state::available; });
}

model_status merge_statuses(std::vector<model_status> parts) {
  auto merged = std::move(parts.front());
  for (size_t i = 1; i < parts.size(); ++i)
    for (auto& version : parts[i].versions)
      merged.versions.push_back(std::move(version));
  return merged;
}

} // namespace actorserve
