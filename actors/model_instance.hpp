#pragma once

// The model instance: the only unit that includes libtorch. It loads a
// torch::jit::Module on request and runs forward calls under
// c10::InferenceMode on its own thread (spawned detached). The instances of
// one version share one module (see shared_module). libtorch exceptions
// become error values; only a real crash kills the actor.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "config/model_config.hpp"
#include "messages/interfaces.hpp"

namespace actorserve {

/// One loaded module, shared by the instances of a version so
/// that N instances cost one copy of the weights. The first instance to get
/// `load` loads it; the others wait for that and reuse it. Forward calls from
/// several instance threads run on it concurrently (TorchScript's forward is
/// safe to call from several threads). Opaque: libtorch stays in the .cpp.
class shared_module;

/// A module slot for the instances of one version; nothing is loaded yet.
std::shared_ptr<shared_module> make_shared_module();

struct instance_settings {
  std::string model_file;               // path of the TorchScript archive
  std::vector<int64_t> input_row_shape; // shape of one instance, for warm-up
  /// Intra-op threads of this instance's forward calls (its own thread's
  /// count: libtorch keeps one per thread, see use_intra_op_threads).
  int32_t intra_op_threads = 1;
  /// Test-only (--enable-fault-injection): an input holding
  /// `crash_sentinel` crashes the instance, as a real fault would.
  bool fault_injection = false;
  /// Shared by the instances of a version (make_shared_module); null gives
  /// the instance a module of its own.
  std::shared_ptr<shared_module> module = nullptr;
  /// Forward calls on zeros this instance runs after loading, before it
  /// answers `load` (config.json `warmup`); their time counts as load time.
  warmup_config warmup;
};

/// The input value that crashes an instance when fault injection is on.
constexpr float crash_sentinel = -7777777.0f;

/// Spawns a detached instance; the caller monitors it. Nothing is loaded
/// until it receives `load`.
instance_actor spawn_model_instance(caf::actor_system& system,
                                    instance_settings settings);

/// Sets libtorch's process-wide thread counts: one intra-op thread for
/// threads that do not choose (each instance sets its own on its thread) and
/// `interop_threads` for the inter-op pool (TorchScript's fork). Call once,
/// before any thread or model exists.
void configure_torch_threads(int32_t interop_threads);

} // namespace actorserve
