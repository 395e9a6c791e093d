#pragma once

// How the response cache names and stores an entry: the key as text (the
// memory store's key, and the Redis key after a prefix) and the output
// tensor as bytes (the Redis value). Pure functions, CAF-free.

#include <optional>
#include <string>
#include <string_view>

#include "messages/interfaces.hpp"

namespace actorserve {

/// "<version>:<model identity>:<input digest>:<model>". Versions are digits
/// and digests fixed-length hex, so the model's name goes last and any name
/// stays unambiguous.
std::string cache_key_text(const response_cache_key& key);

/// The prefix of every Redis key of the response cache.
inline constexpr std::string_view redis_cache_prefix = "actorserve:cache:";

/// A tensor as bytes: a format tag, the rank, the dimensions and the values
/// (this machine's byte order: every node of a cluster runs the same build).
std::string encode_cached_output(const tensor& output);

/// The tensor encoded by encode_cached_output; nothing when `bytes` is not
/// one (another format, truncated, or values that do not fit the shape).
std::optional<tensor> decode_cached_output(std::string_view bytes);

} // namespace actorserve
