#include "http/bridge.hpp"

#include <atomic>

#include <caf/actor_clock.hpp>
#include <caf/actor_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>

namespace actorserve {

namespace {

/// The sender of one bridged request. It has no mailbox and never runs:
/// CAF calls enqueue() on the thread of whoever replies (or bounces the
/// request), and the reply is handed on right there. Threading: enqueue()
/// may race with close(); the flag lets only the first of them through.
class reply_sink final : public caf::monitorable_actor {
public:
  reply_sink(caf::actor_config& cfg, reply_handler on_reply)
      : caf::monitorable_actor(cfg), on_reply_(std::move(on_reply)) {}

  void enqueue(caf::mailbox_element_ptr what, caf::execution_unit*) override {
    if (!what || !what->mid.is_response() || done_.exchange(true))
      return;
    auto reply = what->move_content_to_message();
    on_reply_(reply);
    cleanup(caf::exit_reason::normal, nullptr); // serves one reply only
  }

  void close() {
    done_ = true;
    cleanup(caf::exit_reason::normal, nullptr);
  }

  const char* name() const override { return "reply_sink"; }

private:
  reply_handler on_reply_;
  std::atomic<bool> done_{false};
};

} // namespace

caf::strong_actor_ptr make_reply_sink(caf::actor_system& system, reply_handler on_reply) {
  caf::actor_config config;
  return caf::make_actor<reply_sink, caf::strong_actor_ptr>(
      system.next_actor_id(), system.node(), &system, config, std::move(on_reply));
}

void close_reply_sink(const caf::strong_actor_ptr& sink) {
  static_cast<reply_sink*>(caf::actor_cast<caf::abstract_actor*>(sink))->close();
}

namespace detail {

void schedule_timeout(caf::actor_system& system, const caf::strong_actor_ptr& sink,
                      std::chrono::steady_clock::time_point when) {
  system.clock().schedule_message(
      when, sink,
      caf::make_mailbox_element(nullptr, caf::make_message_id(1).response_id(), {},
                                caf::make_error(caf::sec::request_timeout)));
}

} // namespace detail

} // namespace actorserve
