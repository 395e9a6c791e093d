#include "actors/redis_connection.hpp"

#include <hiredis/hiredis.h>

#include "messages/error.hpp"

namespace actorserve {

namespace {

constexpr std::chrono::milliseconds first_backoff{100};

timeval to_timeval(std::chrono::milliseconds duration) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

redis_reply convert(const redisReply& raw) {
  redis_reply reply;
  switch (raw.type) {
    case REDIS_REPLY_INTEGER:
      reply.type = redis_reply::kind::integer;
      reply.integer = raw.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      reply.type = redis_reply::kind::text;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = redis_reply::kind::array;
      reply.elements.reserve(raw.elements);
      for (size_t i = 0; i < raw.elements; ++i)
        reply.elements.push_back(convert(*raw.element[i]));
      break;
    default: // nil
      break;
  }
  return reply;
}

struct reply_deleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using owned_reply = std::unique_ptr<redisReply, reply_deleter>;

/// Error replies anywhere in the tree (EXEC and scripts nest them).
const redisReply* find_error(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ERROR)
    return &reply;
  if (reply.type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < reply.elements; ++i)
      if (auto* error = find_error(*reply.element[i]))
        return error;
  return nullptr;
}

void append(redisContext* context, const std::vector<std::string>& command) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(command.size());
  lengths.reserve(command.size());
  for (const auto& argument : command) {
    argv.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(),
                         lengths.data());
}

} // namespace

redis_connection::redis_connection(redis_settings settings)
    : settings_(std::move(settings)) {}

redis_connection::~redis_connection() {
  if (context_)
    redisFree(context_);
}

caf::error redis_connection::broken(const std::string& why) {
  if (context_) {
    redisFree(context_);
    context_ = nullptr;
  }
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, settings_.max_backoff);
  return make_error(ec::unavailable, "redis at " + describe() + ": " + why);
}

caf::error redis_connection::connect_now() {
  const auto& endpoint = settings_.endpoint;
  context_ = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                     to_timeval(settings_.timeout));
  if (!context_ || context_->err)
    return broken(context_ ? context_->errstr : "cannot allocate a connection");
  redisSetTimeout(context_, to_timeval(settings_.timeout));
  redisEnableKeepAlive(context_);
  std::vector<std::vector<std::string>> hello;
  if (!endpoint.password.empty())
    hello.push_back({"AUTH", endpoint.password});
  hello.push_back({"SELECT", std::to_string(endpoint.db)});
  for (const auto& command : hello)
    append(context_, command);
  for (size_t i = 0; i < hello.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK)
      return broken(context_->errstr);
    owned_reply reply{static_cast<redisReply*>(raw)};
    if (reply->type == REDIS_REPLY_ERROR) // wrong password, no such database
      return broken(std::string{reply->str, reply->len});
  }
  backoff_ = first_backoff;
  return {};
}

caf::error redis_connection::ensure_connected() {
  if (context_)
    return {};
  if (std::chrono::steady_clock::now() < next_attempt_)
    return make_error(ec::unavailable,
                      "redis at " + describe() + " is unreachable; retrying shortly");
  return connect_now();
}

caf::expected<std::vector<redis_reply>>
redis_connection::run_all(const std::vector<std::vector<std::string>>& commands) {
  if (auto err = ensure_connected())
    return err;
  for (const auto& command : commands)
    append(context_, command);
  std::vector<redis_reply> replies;
  replies.reserve(commands.size());
  caf::error first_error;
  // Every reply is read, even after an error reply, so that the connection
  // stays in step for the next call.
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK)
      return broken(context_->errstr);
    owned_reply reply{static_cast<redisReply*>(raw)};
    if (auto* error = find_error(*reply); error && !first_error)
      first_error =
          make_error(ec::internal, "redis: " + std::string{error->str, error->len});
    replies.push_back(convert(*reply));
  }
  if (first_error)
    return first_error;
  return replies;
}

caf::expected<redis_reply>
redis_connection::run(const std::vector<std::string>& command) {
  auto replies = run_all({command});
  if (!replies)
    return std::move(replies.error());
  return std::move(replies->front());
}

caf::expected<redis_reply> redis_connection::eval(const std::string& script,
                                                  const std::vector<std::string>& keys,
                                                  const std::vector<std::string>& args) {
  std::vector<std::string> command{"EVAL", script, std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return run(command);
}

} // namespace actorserve
