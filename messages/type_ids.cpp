#include "messages/type_ids.hpp"

#include "messages/error.hpp"

namespace actorserve {

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::actorserve>();
  cfg.add_error_category(caf::atom("actorserve"),
                         [](uint8_t code, caf::atom_value, const caf::message& context) {
                           auto text = to_string(static_cast<ec>(code));
                           if (context.match_elements<std::string>())
                             text += ": " + context.get_as<std::string>(0);
                           return text;
                         });
}

} // namespace actorserve
