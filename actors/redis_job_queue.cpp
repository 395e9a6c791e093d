#include "actors/redis_job_queue.hpp"

#include <algorithm>
#include <optional>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "actors/redis_job_scripts.hpp"
#include "messages/error.hpp"

namespace actorserve {

namespace {

const std::string key_prefix = "actorserve:";

/// Payloads as blobs: CAF's binary encoding over their inspect overloads.
template <class... Ts> caf::expected<std::string> encode(Ts... values) {
  std::vector<char> buffer;
  caf::binary_serializer sink{static_cast<caf::execution_unit*>(nullptr), buffer};
  if (auto err = sink(values...))
    return make_error(ec::internal, "a job cannot be encoded: " + caf::to_string(err));
  return std::string{buffer.begin(), buffer.end()};
}

template <class... Ts> caf::error decode(const std::string& blob, Ts&... values) {
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr), blob.data(),
                                  blob.size()};
  if (auto err = source(values...))
    return make_error(ec::internal,
                      "a job stored in redis cannot be read: " + caf::to_string(err));
  return {};
}

caf::error unreadable(const std::string& what) {
  return make_error(ec::internal, "unexpected reply from the redis job store: " + what);
}

std::string ms(std::chrono::milliseconds duration) {
  return std::to_string(duration.count());
}

std::optional<job_state> parse_state(const std::string& text) {
  if (text == "queued")
    return job_state::queued;
  if (text == "running")
    return job_state::running;
  if (text == "succeeded")
    return job_state::succeeded;
  if (text == "failed")
    return job_state::failed;
  return std::nullopt;
}

} // namespace

bool looks_like_job_id(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

redis_job_queue::redis_job_queue(redis_connection& redis, redis_job_limits limits)
    : redis_(redis), limits_(limits) {}

caf::expected<redis_reply> redis_job_queue::script(const std::string& body,
                                                   const std::vector<std::string>& args) {
  return redis_.eval(redis_job_scripts::prelude + body, {}, args);
}

caf::expected<bool> redis_job_queue::submit(const std::string& id,
                                            const job_submission& job) {
  auto meta = encode(job.spec, job.output);
  auto input = encode(job.request);
  if (!meta || !input)
    return meta ? std::move(input.error()) : std::move(meta.error());
  auto bytes = static_cast<int64_t>(meta->size() + input->size());
  auto reply = script(redis_job_scripts::submit,
                      {id, job.spec.name, std::move(*meta), std::move(*input),
                       std::to_string(bytes), std::to_string(job.request.timeout_ms),
                       ms(limits_.ttl), std::to_string(limits_.max_jobs),
                       std::to_string(limits_.max_bytes)});
  if (!reply)
    return std::move(reply.error());
  return reply->integer == 1;
}

caf::expected<std::vector<taken_job>>
redis_job_queue::take(const std::vector<std::string>& models, int32_t count) {
  if (models.empty() || count <= 0)
    return std::vector<taken_job>{};
  std::vector<std::string> args{ms(limits_.lease), std::to_string(count)};
  args.insert(args.end(), models.begin(), models.end());
  auto reply = script(redis_job_scripts::take, args);
  if (!reply)
    return std::move(reply.error());
  std::vector<taken_job> jobs;
  for (const auto& row : reply->elements) {
    if (row.elements.size() != 4)
      return unreadable("a taken job without its four fields");
    taken_job job{row.elements[0].text, row.elements[1].text, {}};
    if (auto err = decode(row.elements[2].text, job.request))
      return err;
    job.request.timeout_ms = row.elements[3].integer;
    job.request.cancel_key = 0;
    jobs.push_back(std::move(job));
  }
  return jobs;
}

caf::expected<std::vector<std::string>>
redis_job_queue::renew(const std::vector<std::string>& ids) {
  if (ids.empty())
    return std::vector<std::string>{};
  std::vector<std::string> args{ms(limits_.lease)};
  args.insert(args.end(), ids.begin(), ids.end());
  auto reply = script(redis_job_scripts::renew, args);
  if (!reply)
    return std::move(reply.error());
  std::vector<std::string> lost;
  for (const auto& id : reply->elements)
    lost.push_back(id.text);
  return lost;
}

caf::expected<bool> redis_job_queue::store_outcome(const std::string& id,
                                                   const char* state,
                                                   const std::string& result,
                                                   const std::string& code,
                                                   const std::string& message) {
  auto reply = script(redis_job_scripts::finish,
                      {id, state, result, code, message, ms(limits_.ttl)});
  if (!reply)
    return std::move(reply.error());
  return reply->integer == 1;
}

caf::expected<bool> redis_job_queue::succeed(const std::string& id,
                                             const predict_reply& reply) {
  auto result = encode(reply);
  if (!result)
    return std::move(result.error());
  return store_outcome(id, "succeeded", *result, "", "");
}

caf::expected<bool> redis_job_queue::fail(const std::string& id,
                                          const caf::error& error) {
  auto api = to_api_error(error);
  return store_outcome(id, "failed", "", std::to_string(static_cast<int>(api.code)),
                       api.message);
}

caf::expected<int64_t> redis_job_queue::release(const std::vector<std::string>& ids) {
  if (ids.empty())
    return 0;
  auto reply = script(redis_job_scripts::release, ids);
  if (!reply)
    return std::move(reply.error());
  return reply->integer;
}

caf::expected<job_view> redis_job_queue::view(const std::string& id) {
  auto not_found =
      make_error(ec::job_not_found, "job " + id + " does not exist or has expired");
  if (!looks_like_job_id(id))
    return not_found;
  auto reply = script(redis_job_scripts::view, {id});
  if (!reply)
    return std::move(reply.error());
  if (reply->elements.size() != 7)
    return unreadable("a job without its seven fields");
  const auto& fields = reply->elements;
  if (fields[0].is_nil())
    return not_found;
  auto state = parse_state(fields[0].text);
  if (!state)
    return unreadable("the job state '" + fields[0].text + "'");
  job_view job;
  job.id = id;
  job.state = *state;
  if (auto err = decode(fields[1].text, job.spec, job.output))
    return err;
  if (job.state == job_state::succeeded)
    if (auto err = decode(fields[2].text, job.reply))
      return err;
  if (job.state == job_state::failed)
    job.error =
        make_error(static_cast<ec>(std::stoi("0" + fields[3].text)), fields[4].text);
  // A job no node took before its deadline (none hosts its model, or all
  // are down), or whose node died past it, has failed: say so now rather
  // than "queued" until it expires.
  auto deadline = std::stoll("0" + fields[5].text);
  auto now = fields[6].integer;
  if ((job.state == job_state::queued && now >= deadline) ||
      (job.state == job_state::running && now >= deadline + limits_.lease.count())) {
    job.state = job_state::failed;
    job.error =
        make_error(ec::deadline_exceeded, "the job's deadline passed before it ran");
  }
  return job;
}

caf::expected<bool> redis_job_queue::cancel(const std::string& id) {
  if (!looks_like_job_id(id))
    return false;
  auto reply = script(redis_job_scripts::cancel, {id});
  if (!reply)
    return std::move(reply.error());
  return reply->integer == 1;
}

caf::expected<int64_t> redis_job_queue::reap() {
  auto reply = script(redis_job_scripts::reap, {});
  if (!reply)
    return std::move(reply.error());
  return reply->integer;
}

caf::expected<int64_t> redis_job_queue::count() {
  auto reply = redis_.run({"ZCARD", key_prefix + "jobs"});
  if (!reply)
    return std::move(reply.error());
  return reply->integer;
}

} // namespace actorserve
