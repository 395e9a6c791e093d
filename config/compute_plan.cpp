#include "config/compute_plan.hpp"

#include <algorithm>

namespace actorserve {

namespace {

/// Both counts unset: split the budget by the model's size.
///
/// Small models (digits: 0.35 MB, a few hundred kFLOP per row): one op is too
/// little work to share between threads, so every CPU gets an instance of
/// its own with one thread, and batches run side by side.
///
/// Large models (resnet18: 45 MB, 1.8 GFLOP per row): one convolution keeps
/// several threads busy, and fewer, wider instances answer each request
/// sooner when traffic is light: about max_default_threads threads per
/// instance. Still at least two instances: while one instance computes, the
/// batcher cuts and sends the next batch to the other, so the CPUs never wait
/// for the batcher (measured on 2 CPUs: resnet18 at 8 connections, see
/// bench/cpu_rows.sh). Below 4 CPUs that leaves one thread per instance.
///
/// The archive's size stands for the work: a row needs at least one
/// multiply-add per weight, 4 bytes each, and convolutions reuse every
/// weight across the image, so large archives mean large ops.
///
/// Every version gets the whole budget: versions of one server are seldom
/// all busy at once, an idle instance costs no CPU, and dividing the budget
/// among versions would leave the CPUs idle while one model is hot. When
/// several are busy together the threads share the CPUs (N busy versions
/// run at most N x budget threads); config.json or the flags set tighter
/// counts where that matters.
compute_plan rule(int32_t cpus, uint64_t model_bytes) {
  if (model_bytes < large_model_bytes || cpus < 2 * 2)
    return {cpus, 1};
  // Rounded to the nearest: at most a few CPUs of a large budget stay idle.
  int32_t instances = std::max(2, (cpus + max_default_threads / 2) / max_default_threads);
  return {instances, cpus / instances};
}

} // namespace

compute_plan plan_compute(const compute_defaults& defaults, int32_t config_instances,
                          int32_t config_threads, uint64_t model_bytes) {
  int32_t cpus = std::max(1, defaults.cpus);
  int32_t instances = config_instances > 0 ? config_instances : defaults.instances;
  int32_t threads = config_threads > 0 ? config_threads : defaults.threads;
  if (instances > 0 && threads > 0)
    return {instances, threads};
  // One count is fixed: the other fills the budget.
  if (instances > 0)
    return {instances, std::max(1, cpus / instances)};
  if (threads > 0)
    return {std::max(1, cpus / threads), threads};
  return rule(cpus, model_bytes);
}

} // namespace actorserve
