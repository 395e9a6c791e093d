// Each version's instances and threads: config.json, then the flags, then
// the rule over the CPU budget and the model's size.

#include "config/compute_plan.hpp"

#include <gtest/gtest.h>

namespace actorserve {
namespace {

constexpr uint64_t small_model = 362972;   // digits' archive
constexpr uint64_t large_model = 46734674; // resnet18's archive

void expect_plan(const compute_plan& plan, int32_t instances, int32_t threads) {
  EXPECT_EQ(plan.instances, instances);
  EXPECT_EQ(plan.threads, threads);
}

TEST(compute_plan, a_small_model_gets_one_single_threaded_instance_per_cpu) {
  for (int32_t cpus : {1, 2, 3, 8, 64})
    expect_plan(plan_compute({cpus, 0, 0}, 0, 0, small_model), cpus, 1);
}

TEST(compute_plan, a_large_model_gets_two_threads_per_instance_from_four_cpus) {
  expect_plan(plan_compute({1, 0, 0}, 0, 0, large_model), 1, 1);
  expect_plan(plan_compute({2, 0, 0}, 0, 0, large_model), 2, 1);
  expect_plan(plan_compute({3, 0, 0}, 0, 0, large_model), 3, 1);
  expect_plan(plan_compute({4, 0, 0}, 0, 0, large_model), 2, large_model_threads);
  expect_plan(plan_compute({5, 0, 0}, 0, 0, large_model), 2, large_model_threads);
  expect_plan(plan_compute({16, 0, 0}, 0, 0, large_model), 8, large_model_threads);
  // The threshold is the archive's size.
  expect_plan(plan_compute({8, 0, 0}, 0, 0, large_model_bytes - 1), 8, 1);
  expect_plan(plan_compute({8, 0, 0}, 0, 0, large_model_bytes), 4, 2);
}

TEST(compute_plan, the_rule_never_exceeds_the_budget) {
  for (int32_t cpus = 1; cpus <= 128; ++cpus)
    for (uint64_t bytes : {uint64_t{0}, small_model, large_model_bytes, large_model}) {
      auto plan = plan_compute({cpus, 0, 0}, 0, 0, bytes);
      EXPECT_GE(plan.instances, 1);
      EXPECT_GE(plan.threads, 1);
      EXPECT_LE(plan.instances * plan.threads, cpus) << cpus << " cpus, " << bytes;
      // At most one CPU in four left idle.
      EXPECT_GE(4 * plan.instances * plan.threads, 3 * cpus)
          << cpus << " cpus, " << bytes;
    }
}

TEST(compute_plan, fixed_instances_get_the_budget_in_threads_up_to_the_rules_cap) {
  expect_plan(plan_compute({8, 0, 0}, 2, 0, small_model), 2, 1);
  expect_plan(plan_compute({2, 0, 0}, 1, 0, small_model), 1, 1);
  expect_plan(plan_compute({8, 3, 0}, 0, 0, small_model), 3, 1);
  expect_plan(plan_compute({2, 0, 0}, 1, 0, large_model), 1, 2);
  expect_plan(plan_compute({8, 0, 0}, 1, 0, large_model), 1, large_model_threads);
  expect_plan(plan_compute({8, 0, 0}, 4, 0, large_model), 4, 2);
  expect_plan(plan_compute({2, 0, 0}, 4, 0, large_model), 4, 1);
}

TEST(compute_plan, fixed_threads_get_the_budget_in_instances) {
  expect_plan(plan_compute({8, 0, 0}, 0, 2, small_model), 4, 2);
  expect_plan(plan_compute({2, 0, 0}, 0, 4, large_model), 1, 4);
  expect_plan(plan_compute({8, 0, 1}, 0, 0, large_model), 8, 1);
}

TEST(compute_plan, config_json_beats_the_flags) {
  expect_plan(plan_compute({8, 2, 1}, 0, 0, small_model), 2, 1);
  expect_plan(plan_compute({8, 2, 1}, 3, 0, small_model), 3, 1);
  expect_plan(plan_compute({8, 2, 1}, 0, 4, small_model), 2, 4);
  expect_plan(plan_compute({8, 2, 1}, 5, 3, small_model), 5, 3);
  // Explicit counts may exceed the budget: the operator asked for them.
  expect_plan(plan_compute({1, 0, 0}, 4, 2, large_model), 4, 2);
}

TEST(compute_plan, a_budget_below_one_counts_as_one) {
  expect_plan(plan_compute({0, 0, 0}, 0, 0, small_model), 1, 1);
  expect_plan(plan_compute({-3, 0, 0}, 0, 0, large_model), 1, 1);
}

} // namespace
} // namespace actorserve
