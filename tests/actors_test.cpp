// The model instance, batcher and router as real actors, on a tiny
// TorchScript model made in the test: y = 2x + 1, which raises on a poisoned
// input (any value of -999) so that failures can be provoked on command.

#include <gtest/gtest.h>

#include <torch/script.h>

#include <caf/all.hpp>

#include "actors/batcher.hpp"
#include "actors/model_instance.hpp"
#include "actors/router.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr float poison = -999.0f;

void make_affine_model(const fs::path& file) {
  torch::jit::Module module{"affine"};
  module.define(R"(
def forward(self, x):
    assert not bool((x == -999.0).any()), "poisoned input"
    return x * 2.0 + 1.0
)");
  fs::create_directories(file.parent_path());
  module.save(file.string());
}

/// A batch of `rows` rows of shape [2], row i holding {base + i, -(base + i)}.
tensor rows_from(float base, int64_t rows) {
  tensor x{{rows, 2}, {}};
  for (int64_t i = 0; i < rows; ++i) {
    x.values.push_back(base + static_cast<float>(i));
    x.values.push_back(-(base + static_cast<float>(i)));
  }
  return x;
}

/// An instance of an affine model (rows of 2), with every other setting's default.
instance_settings affine_instance(const fs::path& file) {
  instance_settings settings;
  settings.model_file = file.string();
  settings.input_row_shape = {2};
  return settings;
}

struct actors_test : ::testing::Test {
  actors_test() {
    make_affine_model(dir.path() / "affine" / "1" / "model.pt");
    testing::write_file(dir.path() / "affine" / "2" / "model.pt",
                        "not a torchscript archive");
  }

  batcher_settings settings(int32_t max_batch, int64_t delay_us, int32_t queue = 1024) {
    batcher_settings result;
    result.model = "affine";
    result.version = "1";
    result.batching = {max_batch, delay_us, queue};
    result.instances = 1;
    result.instance = affine_instance(dir.path() / "affine" / "1" / "model.pt");
    return result;
  }

  testing::temp_dir dir;
  caf::actor_system system{testing::registered_actor_config()};
  caf::scoped_actor self{system};
};

TEST_F(actors_test, instance_loads_warms_up_and_runs_forward) {
  auto instance =
      spawn_model_instance(system, affine_instance(dir.path() / "affine/1/model.pt"));
  self->request(instance, 30s, atom::forward_v, rows_from(1, 1))
      .receive(
          [](tensor&) { FAIL() << "forward before load must fail"; },
          [](caf::error& err) { EXPECT_EQ(to_api_error(err).code, ec::model_loading); });
  self->request(instance, 30s, atom::load_v)
      .receive([](int64_t ms) { EXPECT_GE(ms, 0); },
               [](caf::error& err) { FAIL() << caf::to_string(err); });
  self->request(instance, 30s, atom::forward_v, rows_from(3, 2))
      .receive(
          [](tensor& out) {
            EXPECT_EQ(out.shape, (std::vector<int64_t>{2, 2}));
            EXPECT_EQ(out.values, (std::vector<float>{7, -5, 9, -7}));
          },
          [](caf::error& err) { FAIL() << caf::to_string(err); });
  // A libtorch exception is an error value; the instance keeps serving.
  self->request(instance, 30s, atom::forward_v, tensor{{1, 2}, {poison, 0}})
      .receive([](tensor&) { FAIL() << "poisoned input must fail"; },
               [](caf::error& err) {
                 auto api = to_api_error(err);
                 EXPECT_EQ(api.code, ec::internal);
                 EXPECT_NE(api.message.find("poisoned input"), std::string::npos);
               });
  self->request(instance, 30s, atom::forward_v, rows_from(0, 1))
      .receive(
          [](tensor& out) {
            EXPECT_EQ(out.values, (std::vector<float>{1, 1}));
          },
          [](caf::error& err) { FAIL() << caf::to_string(err); });
  self->send_exit(instance, caf::exit_reason::user_shutdown);
}

// The instances of a version share one module: the second load reuses the
// first one's (the archive is gone by then), and both run forward on it.
TEST_F(actors_test, instances_with_one_shared_module_load_it_once_and_both_serve) {
  auto file = dir.path() / "affine" / "1" / "model.pt";
  auto sharing = affine_instance(file);
  sharing.module = make_shared_module();
  auto first = spawn_model_instance(system, sharing);
  auto second = spawn_model_instance(system, sharing);
  self->request(first, 30s, atom::load_v)
      .receive([](int64_t) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
  fs::remove(file);
  self->request(second, 30s, atom::load_v)
      .receive([](int64_t) {},
               [](caf::error& err) {
                 FAIL() << "must reuse the loaded module: " << caf::to_string(err);
               });
  for (const auto& instance : std::vector{first, second}) {
    self->request(instance, 30s, atom::forward_v, rows_from(3, 1))
        .receive(
            [](tensor& out) {
              EXPECT_EQ(out.values, (std::vector<float>{7, -5}));
            },
            [](caf::error& err) { FAIL() << caf::to_string(err); });
    self->send_exit(instance, caf::exit_reason::user_shutdown);
  }
  auto alone = spawn_model_instance(system, affine_instance(file));
  self->request(alone, 30s, atom::load_v)
      .receive([](int64_t) { FAIL() << "without the shared module it loads the file"; },
               [](caf::error&) {});
  self->send_exit(alone, caf::exit_reason::user_shutdown);
}

TEST_F(actors_test, instance_refuses_a_file_that_is_not_torchscript) {
  auto instance =
      spawn_model_instance(system, affine_instance(dir.path() / "affine/2/model.pt"));
  self->request(instance, 30s, atom::load_v)
      .receive([](int64_t) { FAIL() << "a corrupt archive must not load"; },
               [](caf::error& err) {
                 auto api = to_api_error(err);
                 EXPECT_EQ(api.code, ec::internal);
                 EXPECT_NE(api.message.find("cannot load"), std::string::npos);
               });
  self->send_exit(instance, caf::exit_reason::user_shutdown);
}

TEST_F(actors_test, batcher_answers_each_request_from_its_own_slice) {
  auto batcher = spawn_linked_batcher(self.ptr(), settings(8, 200000));
  self->request(batcher, 30s, atom::load_v)
      .receive([](int64_t) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
  // 12 requests of 1..3 rows each, all sent before any answer is read: they
  // share batches (delay 200 ms) and a 3-row request may be split.
  constexpr int requests = 12;
  std::vector<caf::response_handle<caf::blocking_actor,
                                   caf::detail::type_list<predict_reply>, true>>
      handles;
  for (int i = 0; i < requests; ++i)
    handles.push_back(
        self->request(batcher, 30s, atom::predict_v,
                      predict_request{"", rows_from(i * 100.0f, 1 + i % 3), 20000}));
  for (int i = 0; i < requests; ++i) {
    handles[i].receive(
        [&](predict_reply& reply) {
          EXPECT_EQ(reply.version, "1");
          auto expected = rows_from(i * 100.0f, 1 + i % 3);
          for (auto& v : expected.values)
            v = v * 2 + 1;
          EXPECT_EQ(reply.output.shape, expected.shape);
          EXPECT_EQ(reply.output.values, expected.values) << "request " << i;
        },
        [&](caf::error& err) {
          FAIL() << "request " << i << ": " << caf::to_string(err);
        });
  }
  self->request(batcher, 30s, atom::stats_v)
      .receive(
          [&](batcher_stats& stats) {
            EXPECT_EQ(stats.batched_rows, 24); // 4 × (1 + 2 + 3)
            EXPECT_LE(stats.batches, 4);       // 24 rows in batches of 8
          },
          [](caf::error& err) { FAIL() << caf::to_string(err); });
}

TEST_F(actors_test, a_poisoned_request_fails_alone) {
  auto batcher = spawn_linked_batcher(self.ptr(), settings(16, 200000));
  self->request(batcher, 30s, atom::load_v)
      .receive([](int64_t) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
  auto good_a = self->request(batcher, 30s, atom::predict_v,
                              predict_request{"", rows_from(1, 2), 20000});
  auto bad = self->request(batcher, 30s, atom::predict_v,
                           predict_request{"", tensor{{1, 2}, {poison, 1}}, 20000});
  auto good_b = self->request(batcher, 30s, atom::predict_v,
                              predict_request{"", rows_from(5, 1), 20000});
  good_a.receive(
      [](predict_reply& r) {
        EXPECT_EQ(r.output.values, (std::vector<float>{3, -1, 5, -3}));
      },
      [](caf::error& err) { FAIL() << caf::to_string(err); });
  bad.receive([](predict_reply&) { FAIL() << "the poisoned request must fail"; },
              [](caf::error& err) { EXPECT_EQ(to_api_error(err).code, ec::internal); });
  good_b.receive(
      [](predict_reply& r) {
        EXPECT_EQ(r.output.values, (std::vector<float>{11, -9}));
      },
      [](caf::error& err) { FAIL() << caf::to_string(err); });
}

TEST_F(actors_test, a_full_queue_answers_overloaded_at_once) {
  // One instance, a long delay and a queue of 2: the third waiting request
  // is refused while the first two still wait for their batch.
  auto batcher = spawn_linked_batcher(self.ptr(), settings(64, 2000000, 2));
  self->request(batcher, 30s, atom::load_v)
      .receive([](int64_t) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
  auto first = self->request(batcher, 30s, atom::predict_v,
                             predict_request{"", rows_from(1, 1), 20000});
  auto second = self->request(batcher, 30s, atom::predict_v,
                              predict_request{"", rows_from(2, 1), 20000});
  auto started = std::chrono::steady_clock::now();
  self->request(batcher, 30s, atom::predict_v,
                predict_request{"", rows_from(3, 1), 20000})
      .receive(
          [](predict_reply&) { FAIL() << "the third request must be refused"; },
          [](caf::error& err) { EXPECT_EQ(to_api_error(err).code, ec::overloaded); });
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  first.receive([](predict_reply&) {},
                [](caf::error& err) { FAIL() << caf::to_string(err); });
  second.receive([](predict_reply&) {},
                 [](caf::error& err) { FAIL() << caf::to_string(err); });
}

TEST_F(actors_test, a_queued_request_past_its_deadline_is_answered_deadline_exceeded) {
  auto batcher = spawn_linked_batcher(self.ptr(), settings(64, 1000000));
  self->request(batcher, 30s, atom::load_v)
      .receive([](int64_t) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
  auto started = std::chrono::steady_clock::now();
  self->request(batcher, 30s, atom::predict_v, predict_request{"", rows_from(1, 1), 50})
      .receive([](predict_reply&) { FAIL() << "must expire in the queue"; },
               [](caf::error& err) {
                 EXPECT_EQ(to_api_error(err).code, ec::deadline_exceeded);
               });
  auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 900ms); // long before the 1 s batch delay
}

TEST_F(actors_test, router_serves_available_versions_and_reports_failed_ones) {
  router_settings settings;
  settings.model = "affine";
  settings.directory = dir.path() / "affine";
  settings.config.input.type = input_kind::tensor;
  settings.config.input.shape = {2};
  settings.config.batching = {8, 0, 64};
  settings.versions = {"1", "2"};
  auto router = spawn_router(system, settings);
  // Wait until both loads have ended.
  model_status status;
  for (int attempt = 0; attempt < 300; ++attempt) {
    self->request(router, 5s, atom::status_v)
        .receive([&](model_status& s) { status = s; }, [](caf::error&) {});
    auto loading = std::any_of(status.versions.begin(), status.versions.end(),
                               [](auto& v) { return v.state == version_state::loading; });
    if (!status.versions.empty() && !loading)
      break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(status.versions.size(), 2u);
  EXPECT_EQ(status.versions[0].state, version_state::available);
  EXPECT_EQ(status.versions[1].state, version_state::failed);
  EXPECT_NE(status.versions[1].error.find("cannot load"), std::string::npos);
  EXPECT_EQ(status.default_version, "1");

  self->request(router, 5s, atom::predict_v, predict_request{"", rows_from(4, 1), 5000})
      .receive(
          [](predict_reply& r) {
            EXPECT_EQ(r.version, "1");
            EXPECT_EQ(r.output.values, (std::vector<float>{9, -7}));
          },
          [](caf::error& err) { FAIL() << caf::to_string(err); });
  self->request(router, 5s, atom::predict_v, predict_request{"2", rows_from(4, 1), 5000})
      .receive(
          [](predict_reply&) { FAIL() << "failed version must not serve"; },
          [](caf::error& err) { EXPECT_EQ(to_api_error(err).code, ec::unavailable); });
  self->request(router, 5s, atom::predict_v, predict_request{"3", rows_from(4, 1), 5000})
      .receive([](predict_reply&) { FAIL() << "unknown version must not serve"; },
               [](caf::error& err) {
                 EXPECT_EQ(to_api_error(err).code, ec::version_not_found);
               });
  self->send_exit(router, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace actorserve
