#include "config/compute_plan.hpp"

#include <algorithm>

namespace actorserve {

namespace {

/// Both counts unset: split the budget by the model's size.
///
/// Small models (digits: 0.35 MB): one op is too little work to share
/// between threads, so every CPU gets an instance of its own with one thread,
/// and batches run side by side.
///
/// Large models (resnet18: 45 MB, 1.8 GFLOP per row): one convolution keeps
/// two threads busy, and wider instances answer a request sooner when traffic
/// is light: large_model_threads per instance. Still at least two instances:
/// while one computes, the batcher cuts and sends the next batch to the other
/// (on 2 CPUs, 2 x 1 beat 1 x 2 at 8 connections; bench/cpu_rows.sh). Below
/// 4 CPUs that leaves one thread per instance.
///
/// Why no wider teams: every parallel region of a forward ends at a barrier
/// that waits for each thread of the team, so one team thread that another
/// process (or another busy version) has pushed off its CPU stalls them all.
/// Measured on this 2-CPU box while other builds ran: resnet18 at batch 1
/// with 2 threads 0.4 img/s against 3.7 with 1 (in-process libtorch), and a
/// 1 x 2 version 2.2 req/s against 10.1 for a 1 x 1 one in the same server.
/// Single-threaded instances only share the CPUs more slowly.
///
/// The archive's size stands for the work: a row needs at least one
/// multiply-add per weight, 4 bytes each, and convolutions reuse every
/// weight across the image, so large archives mean large ops.
///
/// Every version gets the whole budget: versions of one server are seldom
/// all busy at once, an idle instance costs no CPU, and dividing the budget
/// among versions would leave CPUs idle while one model is hot. When several
/// are busy together they time-share the CPUs (N busy versions run at most
/// N x budget threads, in teams of at most two); config.json or the flags
/// set tighter counts where that matters.
compute_plan rule(int32_t cpus, uint64_t model_bytes) {
  if (model_bytes < large_model_bytes || cpus < 2 * large_model_threads)
    return {cpus, 1};
  return {cpus / large_model_threads, large_model_threads};
}

/// The most threads the rule gives one instance of the model. A fixed
/// instance count does not widen the teams: `slow` (a small model with
/// "instances": 1) took 380 ms of CPU per request with 2 threads against
/// 40 ms with 1 while builds shared the cores.
int32_t thread_cap(uint64_t model_bytes) {
  return model_bytes < large_model_bytes ? 1 : large_model_threads;
}

} // namespace

compute_plan plan_compute(const compute_defaults& defaults, int32_t config_instances,
                          int32_t config_threads, uint64_t model_bytes) {
  int32_t cpus = std::max(1, defaults.cpus);
  int32_t instances = config_instances > 0 ? config_instances : defaults.instances;
  int32_t threads = config_threads > 0 ? config_threads : defaults.threads;
  if (instances > 0 && threads > 0)
    return {instances, threads};
  // One count is fixed: the other fills the budget, threads up to the cap.
  if (instances > 0)
    return {instances, std::clamp(cpus / instances, 1, thread_cap(model_bytes))};
  if (threads > 0)
    return {std::max(1, cpus / threads), threads};
  return rule(cpus, model_bytes);
}

} // namespace actorserve
