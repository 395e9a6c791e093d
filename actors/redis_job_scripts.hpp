#pragma once

// The Lua scripts of the Redis job store (actors/redis_job_queue.hpp). Each
// runs atomically inside Redis, so every node sees one consistent store: the
// bounds, the queues and the leases never race. Time is Redis's own clock
// (TIME), so nodes need no synchronised clocks.
//
// Key layout (standalone Redis; the scripts touch keys they compute):
//   actorserve:job:{id}    hash: state (queued|running|succeeded|failed),
//                          model, meta (spec + output options), input (the
//                          request, until it finished), deadline (ms),
//                          result (the reply), error_code, error_message;
//                          PEXPIREAT its expiry
//   actorserve:jobs        sorted set: id by expiry (ms), the count bound
//   actorserve:job_sizes   hash: id -> bytes held, for the byte bound
//   actorserve:job_bytes   integer: bytes held by every job
//   actorserve:queue:{model}  list: queued ids, taken from the front
//   actorserve:leases      sorted set: running id by lease expiry (ms)
// An unfinished job expires ttl after its deadline; a finished one ttl after
// it finished.

namespace actorserve::redis_job_scripts {

/// Shared by every script: the clock, forgetting a job, purging expired ones
/// (at most 100 per call, so a script never runs long), and putting running
/// jobs back at the front of their queues (the first of `ids` ends first).
inline constexpr const char* prelude = R"lua(
local P = 'actorserve:'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function forget(id)
  local size = tonumber(redis.call('HGET', P .. 'job_sizes', id) or '0')
  redis.call('DECRBY', P .. 'job_bytes', size)
  redis.call('HDEL', P .. 'job_sizes', id)
  redis.call('ZREM', P .. 'jobs', id)
  redis.call('ZREM', P .. 'leases', id)
  redis.call('DEL', P .. 'job:' .. id)
end
local function purge(now)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'jobs', '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(ids) do forget(id) end
end
local function requeue(ids)
  local requeued = 0
  for i = #ids, 1, -1 do
    local id = ids[i]
    redis.call('ZREM', P .. 'leases', id)
    local key = P .. 'job:' .. id
    local job = redis.call('HMGET', key, 'state', 'model')
    if job[1] == 'running' then
      redis.call('HSET', key, 'state', 'queued')
      redis.call('LPUSH', P .. 'queue:' .. job[2], id)
      requeued = requeued + 1
    end
  end
  return requeued
end
)lua";

/// ARGV: id, model, meta, input, bytes, timeout_ms, ttl_ms, max_jobs,
/// max_bytes. Purges, checks both bounds, stores and queues the job.
/// Returns 1, or 0 when the store is full.
inline constexpr const char* submit = R"lua(
local id, model, bytes = ARGV[1], ARGV[2], tonumber(ARGV[5])
local now = now_ms()
purge(now)
if redis.call('ZCARD', P .. 'jobs') >= tonumber(ARGV[8]) then return 0 end
if tonumber(redis.call('GET', P .. 'job_bytes') or '0') + bytes > tonumber(ARGV[9]) then
  return 0
end
local deadline = now + tonumber(ARGV[6])
local expires = deadline + tonumber(ARGV[7])
local key = P .. 'job:' .. id
redis.call('HSET', key, 'state', 'queued', 'model', model, 'meta', ARGV[3],
           'input', ARGV[4], 'deadline', deadline)
redis.call('PEXPIREAT', key, expires)
redis.call('ZADD', P .. 'jobs', expires, id)
redis.call('HSET', P .. 'job_sizes', id, bytes)
redis.call('INCRBY', P .. 'job_bytes', bytes)
redis.call('RPUSH', P .. 'queue:' .. model, id)
return 1
)lua";

/// ARGV: lease_ms, count, model... Takes up to count queued jobs, one model
/// after the other, marks them running and leases them. Returns
/// {{id, model, input, ms left until the deadline}...}; ids whose job is gone
/// (cancelled, expired) are dropped from the queue on the way.
inline constexpr const char* take = R"lua(
local now, lease, wanted = now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2])
local active, taken = {}, {}
for i = 3, #ARGV do active[#active + 1] = ARGV[i] end
while #taken < wanted and #active > 0 do
  local still = {}
  for _, model in ipairs(active) do
    if #taken >= wanted then break end
    local id = redis.call('LPOP', P .. 'queue:' .. model)
    if id then
      still[#still + 1] = model
      local key = P .. 'job:' .. id
      local job = redis.call('HMGET', key, 'state', 'input', 'deadline')
      if job[1] == 'queued' then
        redis.call('HSET', key, 'state', 'running')
        redis.call('ZADD', P .. 'leases', now + lease, id)
        taken[#taken + 1] = {id, model, job[2], tonumber(job[3]) - now}
      end
    end
  end
  active = still
end
return taken
)lua";

/// ARGV: lease_ms, id... Extends the leases still held; returns the ids whose
/// lease was lost (reaped or cancelled meanwhile).
inline constexpr const char* renew = R"lua(
local now, lease, lost = now_ms(), tonumber(ARGV[1]), {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', P .. 'leases', ARGV[i]) then
    redis.call('ZADD', P .. 'leases', now + lease, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
)lua";

/// ARGV: id, state (succeeded|failed), result, error_code, error_message,
/// ttl_ms. Stores the outcome only while the job exists and has none yet (a
/// cancelled or expired job's result is dropped; at-least-once runs keep the
/// first); the input is released and the byte count follows. Returns 1 when
/// stored.
inline constexpr const char* finish = R"lua(
local id = ARGV[1]
local key = P .. 'job:' .. id
redis.call('ZREM', P .. 'leases', id)
local job = redis.call('HMGET', key, 'state', 'model')
if not job[1] or job[1] == 'succeeded' or job[1] == 'failed' then return 0 end
if job[1] == 'queued' then redis.call('LREM', P .. 'queue:' .. job[2], 0, id) end
redis.call('HDEL', key, 'input')
redis.call('HSET', key, 'state', ARGV[2], 'result', ARGV[3], 'error_code', ARGV[4],
           'error_message', ARGV[5])
local bytes = redis.call('HSTRLEN', key, 'meta') + string.len(ARGV[3]) + string.len(ARGV[5])
local held = tonumber(redis.call('HGET', P .. 'job_sizes', id) or '0')
redis.call('HSET', P .. 'job_sizes', id, bytes)
redis.call('INCRBY', P .. 'job_bytes', bytes - held)
local expires = now_ms() + tonumber(ARGV[6])
redis.call('PEXPIREAT', key, expires)
redis.call('ZADD', P .. 'jobs', expires, id)
return 1
)lua";

/// ARGV: id... (in the order they were taken). Gives running jobs back:
/// queued again at the front of their queues, in that order, unleased.
/// Returns how many were running.
inline constexpr const char* release = R"lua(
return requeue(ARGV)
)lua";

/// ARGV: id. Returns the job's state, meta, result, error_code,
/// error_message and deadline (nil when there is no such job), then Redis's
/// time (ms).
inline constexpr const char* view = R"lua(
local job = redis.call('HMGET', P .. 'job:' .. ARGV[1], 'state', 'meta', 'result',
                       'error_code', 'error_message', 'deadline')
job[7] = now_ms()
return job
)lua";

/// ARGV: id. A queued job leaves its queue; any job is forgotten. Returns 1,
/// or 0 when there is no such job.
inline constexpr const char* cancel = R"lua(
local id = ARGV[1]
local job = redis.call('HMGET', P .. 'job:' .. id, 'state', 'model')
if not job[1] then return 0 end
if job[1] == 'queued' then redis.call('LREM', P .. 'queue:' .. job[2], 0, id) end
forget(id)
return 1
)lua";

/// No arguments. Puts running jobs whose lease lapsed back at the front of
/// their queue (the earliest lapsed first), then purges expired jobs.
/// Returns the number requeued.
inline constexpr const char* reap = R"lua(
local now = now_ms()
local requeued = requeue(
  redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, 100))
purge(now)
return requeued
)lua";

} // namespace actorserve::redis_job_scripts
