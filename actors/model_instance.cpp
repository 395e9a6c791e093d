#include "actors/model_instance.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <caf/all.hpp>

#include "messages/error.hpp"

namespace actorserve {

namespace {

/// Wraps `x` without copying; `x` must outlive the returned tensor.
at::Tensor as_torch(tensor& x) {
  return torch::from_blob(x.values.data(), x.shape, torch::kFloat32);
}

caf::expected<tensor> run_forward(torch::jit::Module& module, tensor& input) {
  try {
    c10::InferenceMode inference;
    auto output = module.forward({as_torch(input)});
    if (!output.isTensor())
      return make_error(ec::internal, "model returned a non-tensor value");
    auto result_tensor = output.toTensor().to(torch::kFloat32).contiguous();
    if (result_tensor.dim() == 0 || result_tensor.size(0) != input.shape[0])
      return make_error(ec::internal, "model output's first dimension is not the batch");
    tensor result;
    result.shape = result_tensor.sizes().vec();
    auto* data = result_tensor.data_ptr<float>();
    result.values.assign(data, data + result_tensor.numel());
    return result;
  } catch (const c10::Error& e) {
    return make_error(ec::internal,
                      std::string{"forward failed: "} + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return make_error(ec::internal, std::string{"forward failed: "} + e.what());
  }
}

caf::expected<torch::jit::Module> load_module(const std::string& file) {
  try {
    auto module = torch::jit::load(file, torch::kCPU);
    module.eval();
    return module;
  } catch (const c10::Error& e) {
    return make_error(ec::internal,
                      "cannot load " + file + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return make_error(ec::internal, "cannot load " + file + ": " + e.what());
  }
}

tensor zeros(int64_t batch_size, const std::vector<int64_t>& row_shape) {
  tensor input;
  input.shape.push_back(batch_size);
  input.shape.insert(input.shape.end(), row_shape.begin(), row_shape.end());
  int64_t size = batch_size;
  for (auto dim : row_shape)
    size *= dim;
  input.values.assign(static_cast<size_t>(size), 0.0f);
  return input;
}

/// Runs the configured warm-up forward calls; the first failure says why.
caf::expected<void> warm_up(torch::jit::Module& module,
                            const instance_settings& settings) {
  for (int32_t round = 0; round < settings.warmup.count; ++round) {
    for (auto batch_size : settings.warmup.batch_sizes) {
      auto input = zeros(batch_size, settings.input_row_shape);
      if (auto warm = run_forward(module, input); !warm)
        return make_error(ec::internal,
                          "warm-up of " + settings.model_file + " (batch of " +
                              std::to_string(batch_size) +
                              ") failed: " + to_api_error(warm.error()).message);
    }
  }
  return {};
}

/// Makes this thread's forward calls use `threads` intra-op threads. libtorch
/// keeps the count per thread (OpenMP's nthreads for the parallel regions this
/// thread starts), but the first parallel op of a thread resets it to the
/// last count set by any thread: running that one-time reset first keeps the
/// count this thread chose.
void use_intra_op_threads(int32_t threads) {
  at::get_num_threads(); // the one-time per-thread reset
  at::set_num_threads(threads);
}

} // namespace

class shared_module {
public:
  /// Loads the module unless an earlier call did; a failed load leaves the
  /// slot empty, so the next call tries again. Any thread.
  caf::expected<torch::jit::Module*> load(const instance_settings& settings) {
    std::lock_guard<std::mutex> guard{mutex_};
    if (!module_) {
      auto module = load_module(settings.model_file);
      if (!module)
        return std::move(module.error());
      module_ = std::move(*module);
    }
    // Never reassigned once set: callers use the pointer without the lock.
    return &*module_;
  }

private:
  std::mutex mutex_;
  std::optional<torch::jit::Module> module_;
};

namespace {

struct model_instance_state {
  static inline const char* name = "model_instance";
  // Set once this instance's `load` succeeded; read only on its own thread.
  torch::jit::Module* module = nullptr;
};

using instance_pointer = instance_actor::stateful_pointer<model_instance_state>;

instance_actor::behavior_type model_instance(instance_pointer self,
                                             instance_settings settings) {
  return {
      [=](atom::load) -> caf::result<int64_t> {
        auto started = std::chrono::steady_clock::now();
        if (!self->state.module) {
          use_intra_op_threads(settings.intra_op_threads);
          auto module = settings.module->load(settings);
          if (!module)
            return std::move(module.error());
          // Every instance warms up on its own thread before it serves.
          if (auto warm = warm_up(**module, settings); !warm)
            return std::move(warm.error());
          self->state.module = *module;
        }
        auto elapsed = std::chrono::steady_clock::now() - started;
        return std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
      },
      [=](atom::forward, tensor& input) -> caf::result<tensor> {
        if (!self->state.module)
          return make_error(ec::model_loading, "model instance is not loaded");
        if (settings.fault_injection &&
            std::find(input.values.begin(), input.values.end(), crash_sentinel) !=
                input.values.end())
          throw std::runtime_error("fault injection: crash requested by the input");
        return run_forward(*self->state.module, input);
      },
  };
}

} // namespace

std::shared_ptr<shared_module> make_shared_module() {
  return std::make_shared<shared_module>();
}

instance_actor spawn_model_instance(caf::actor_system& system,
                                    instance_settings settings) {
  if (!settings.module)
    settings.module = make_shared_module();
  return system.spawn<caf::detached>(model_instance, std::move(settings));
}

void configure_torch_threads(int32_t interop_threads) {
  at::set_num_threads(1);
  at::set_num_interop_threads(interop_threads);
}

} // namespace actorserve
