#pragma once

// SHA-256 digests, as lowercase hex, of what the response cache's keys are
// made of (see response_cache_key in messages/interfaces.hpp): a tensor
// (shape and float bytes, exactly) and a file (a version's model.pt); and
// raw, of a text (API keys are kept and compared as their digests).
// Thread-safe pure functions. SHA-256 on purpose: two inputs that collided
// would be served each other's answers.

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "messages/payloads.hpp"

namespace actorserve {

/// The digest of `x`: its rank, each dimension and every value's bytes, so
/// that equal digests mean equal tensors (a reshape changes it; so does
/// -0.0 for 0.0). Called on a door's thread, never on the scheduler.
std::string tensor_digest(const tensor& x);

/// The digest of the file's bytes, read in pieces; ec::internal when it
/// cannot be read. Blocking: run it on a detached actor.
caf::expected<std::string> file_digest(const std::filesystem::path& file);

/// The 32 raw bytes of the digest of `text`.
std::array<unsigned char, 32> sha256_of(std::string_view text);

} // namespace actorserve
