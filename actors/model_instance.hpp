#pragma once

// The model instance: the only unit that includes libtorch. It owns one
// torch::jit::Module, loads it on request, and runs forward calls under
// c10::InferenceMode on its own thread (spawned detached). libtorch
// exceptions become error values; only a real crash kills the actor.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "messages/interfaces.hpp"

namespace actorserve {

struct instance_settings {
  std::string model_file;               // path of the TorchScript archive
  std::vector<int64_t> input_row_shape; // shape of one instance, for warm-up
  /// Test-only (--enable-fault-injection): an input holding
  /// `crash_sentinel` crashes the instance, as a real fault would.
  bool fault_injection = false;
};

/// The input value that crashes an instance when fault injection is on.
constexpr float crash_sentinel = -7777777.0f;

/// Spawns a detached instance; the caller monitors it. Nothing is loaded
/// until it receives `load`.
instance_actor spawn_model_instance(caf::actor_system& system,
                                    instance_settings settings);

/// Sets libtorch's intra-op and inter-op thread counts for this process.
/// Call once, before any model is loaded.
void configure_torch_threads(int32_t threads);

} // namespace actorserve
