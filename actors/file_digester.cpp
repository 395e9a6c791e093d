#include "actors/file_digester.hpp"

#include <caf/all.hpp>

#include "messages/digest.hpp"

namespace actorserve {

namespace {

file_digest_actor::behavior_type file_digester(file_digest_actor::pointer self) {
  return {
      [=](const std::string& file) -> caf::result<std::string> {
        self->quit();
        auto digest = file_digest(file);
        if (!digest)
          return std::move(digest.error());
        return std::move(*digest);
      },
  };
}

} // namespace

file_digest_actor spawn_file_digester(caf::actor_system& system) {
  return system.spawn<caf::detached>(file_digester);
}

} // namespace actorserve
