#pragma once

// A one-shot actor that reads a file's SHA-256 (messages/digest.hpp) on a
// thread of its own, replies, then quits: a big model archive takes a while
// to read, and the scheduler's threads must not wait for it. Used by the
// router for the identity of the model.pt a version loads (response cache
// keys).

#include <string>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace actorserve {

/// Replies with the hex digest of the file at the path, or ec::internal.
using file_digest_actor =
    caf::typed_actor<caf::replies_to<std::string>::with<std::string>>;

file_digest_actor spawn_file_digester(caf::actor_system& system);

} // namespace actorserve
