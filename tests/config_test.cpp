// Tests of config/: the per-model config.json schema and the server options
// (defaults, config file, environment, flags, validation, --help).

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/model_config.hpp"
#include "config/server_options.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using actorserve::testing::temp_dir;

/// Writes `text` to `name` in `dir` and returns the file's path.
fs::path write(const temp_dir& dir, const std::string& name, const std::string& text) {
  fs::path file = dir.path() / name;
  actorserve::testing::write_file(file, text);
  return file;
}

/// Sets (or, with nullopt, unsets) an environment variable for one scope.
class env_guard {
public:
  env_guard(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()))
      old_ = old;
    if (value)
      ::setenv(name_.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ~env_guard() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;

private:
  std::string name_;
  std::optional<std::string> old_;
};

/// The message of the config_error that `f` throws, or "" after a failure.
template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a config_error";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- model config -------------------------------------------------------------

class model_config_test : public ::testing::Test {
protected:
  model_config load(const std::string& text) {
    return load_model_config(write(dir_, "config.json", text));
  }

  /// Loads `text` as config.json; expects an error naming the file and `key`.
  void expect_error(const std::string& text, const std::string& key) {
    SCOPED_TRACE(text);
    std::string message = error_of([&] { load(text); });
    std::string file = (dir_.path() / "config.json").string();
    EXPECT_TRUE(contains(message, file + ": " + key + ": ")) << message;
  }

  temp_dir dir_;
};

TEST_F(model_config_test, image_config_gets_defaults_and_computed_shape) {
  model_config config = load(R"({"input": {"height": 28, "width": 32}})");
  const input_spec& in = config.input;
  EXPECT_EQ(in.type, input_kind::image);
  EXPECT_EQ(in.height, 28);
  EXPECT_EQ(in.width, 32);
  EXPECT_EQ(in.channels, 3);
  EXPECT_EQ(in.color, color_order::rgb);
  EXPECT_FLOAT_EQ(in.scale, 1.0f / 255.0f);
  EXPECT_EQ(in.mean, (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(in.std, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(in.shape, (std::vector<int64_t>{3, 28, 32}));
  EXPECT_EQ(config.output.type, output_kind::raw);
  EXPECT_EQ(config.output.top_k, 5);
  EXPECT_EQ(config.output.labels, "");
  EXPECT_EQ(config.batching.max_batch_size, 32);
  EXPECT_EQ(config.batching.max_queue_delay_us, 2000);
  EXPECT_EQ(config.batching.max_queue_size, 1024);
  EXPECT_EQ(config.batching.priority_levels, 3);
  EXPECT_EQ(config.batching.max_priority_wait_us, 1'000'000);
  EXPECT_EQ(config.instances, 0); // by the CPU budget
  EXPECT_EQ(config.threads, 0);
  EXPECT_EQ(config.default_version, "");
  EXPECT_TRUE(config.traffic.empty());
}

TEST_F(model_config_test, image_config_with_every_key) {
  model_config config = load(R"({
    "input": {"type": "image", "height": 224, "width": 224, "channels": 3,
              "color": "bgr", "scale": 1.0, "mean": [0.5], "std": [0.1, 0.2, 0.4]},
    "output": {"type": "classification", "top_k": 3, "labels": "meta/labels.txt"},
    "batching": {"max_batch_size": 8, "max_queue_delay_us": 0, "max_queue_size": 16,
                 "priority_levels": 5, "max_priority_wait_us": 250000},
    "instances": 2,
    "threads": 3,
    "default_version": "2",
    "traffic": {"1": 10, "2": 90, "3": 0}
  })");
  EXPECT_EQ(config.input.color, color_order::bgr);
  EXPECT_FLOAT_EQ(config.input.scale, 1.0f);
  EXPECT_EQ(config.input.mean, (std::vector<float>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(config.input.std, (std::vector<float>{0.1f, 0.2f, 0.4f}));
  EXPECT_EQ(config.output.type, output_kind::classification);
  EXPECT_EQ(config.output.top_k, 3);
  EXPECT_EQ(config.output.labels, "meta/labels.txt");
  EXPECT_EQ(config.batching.max_batch_size, 8);
  EXPECT_EQ(config.batching.max_queue_delay_us, 0);
  EXPECT_EQ(config.batching.max_queue_size, 16);
  EXPECT_EQ(config.batching.priority_levels, 5);
  EXPECT_EQ(config.batching.max_priority_wait_us, 250000);
  EXPECT_EQ(config.instances, 2);
  EXPECT_EQ(config.threads, 3);
  EXPECT_EQ(config.default_version, "2");
  EXPECT_EQ(config.traffic,
            (std::map<std::string, int32_t>{{"1", 10}, {"2", 90}, {"3", 0}}));
}

TEST_F(model_config_test, grayscale_image_has_one_channel) {
  model_config config =
      load(R"({"input": {"height": 28, "width": 28, "channels": 1, "mean": [0.1307],
                         "std": [0.3081]}})");
  EXPECT_EQ(config.input.shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(config.input.mean, (std::vector<float>{0.1307f}));
  EXPECT_EQ(config.input.std, (std::vector<float>{0.3081f}));
}

TEST_F(model_config_test, tensor_config) {
  model_config config =
      load(R"({"input": {"type": "tensor", "shape": [2, 3]}, "output": {"type": "raw"},
               "default_version": 4})");
  EXPECT_EQ(config.input.type, input_kind::tensor);
  EXPECT_EQ(config.input.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(config.output.type, output_kind::raw);
  EXPECT_EQ(config.default_version, "4");
}

TEST_F(model_config_test, error_message_names_source_and_key) {
  json document = json::parse(R"({"input": {"height": 0, "width": 28}})");
  std::string message =
      error_of([&] { parse_model_config(document, "repo/digits/config.json"); });
  EXPECT_EQ(message,
            "repo/digits/config.json: input.height: must be an integer from 1 to 16384, "
            "got 0");
}

TEST_F(model_config_test, unknown_keys_are_errors) {
  expect_error(R"({"input": {"height": 1, "width": 1}, "inputs": {}})", "inputs");
  expect_error(R"({"input": {"height": 1, "width": 1, "colour": "rgb"}})",
               "input.colour");
  expect_error(R"({"input": {"height": 1, "width": 1}, "output": {"topk": 3}})",
               "output.topk");
  expect_error(R"({"input": {"height": 1, "width": 1}, "batching": {"max_batch": 3}})",
               "batching.max_batch");
}

TEST_F(model_config_test, wrong_types_are_errors) {
  expect_error(R"({"input": {"height": "28", "width": 28}})", "input.height");
  expect_error(R"({"input": {"height": 28.5, "width": 28}})", "input.height");
  expect_error(R"({"input": [28, 28]})", "input");
  expect_error(R"({"input": {"height": 28, "width": 28, "mean": 0.5}})", "input.mean");
  expect_error(R"({"input": {"height": 28, "width": 28, "mean": ["0.5"]}})",
               "input.mean[0]");
  expect_error(R"({"input": {"height": 28, "width": 28, "type": 1}})", "input.type");
  expect_error(R"({"input": {"height": 1, "width": 1}, "output": {"labels": 3}})",
               "output.labels");
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": [1, 2]})", "traffic");
  expect_error(R"({"input": {"height": 1, "width": 1}, "instances": true})", "instances");
  expect_error(R"({"input": {"height": 1, "width": 1}, "threads": "2"})", "threads");
}

TEST_F(model_config_test, out_of_range_values_are_errors) {
  expect_error(R"({"input": {"height": 0, "width": 28}})", "input.height");
  expect_error(R"({"input": {"height": 28, "width": 16385}})", "input.width");
  expect_error(R"({"input": {"height": 28, "width": 28, "channels": 2}})",
               "input.channels");
  expect_error(R"({"input": {"height": 28, "width": 28, "channels": 4}})",
               "input.channels");
  expect_error(R"({"input": {"height": 28, "width": 28, "scale": 0}})", "input.scale");
  expect_error(R"({"input": {"height": 28, "width": 28, "color": "rgba"}})",
               "input.color");
  expect_error(R"({"input": {"type": "video"}})", "input.type");
  expect_error(R"({"input": {"height": 1, "width": 1}, "output": {"type": "softmax"}})",
               "output.type");
  expect_error(R"({"input": {"height": 1, "width": 1}, "output": {"top_k": 0}})",
               "output.top_k");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "batching": {"max_batch_size": 4097}})",
      "batching.max_batch_size");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "batching": {"max_queue_delay_us": -1}})",
      "batching.max_queue_delay_us");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "batching": {"max_queue_size": 0}})",
      "batching.max_queue_size");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "batching": {"priority_levels": 0}})",
      "batching.priority_levels");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "batching": {"priority_levels": 33}})",
      "batching.priority_levels");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "batching": {"max_priority_wait_us": 0}})",
      "batching.max_priority_wait_us");
  expect_error(R"({"input": {"height": 1, "width": 1}, "instances": 65})", "instances");
  expect_error(R"({"input": {"height": 1, "width": 1}, "threads": 0})", "threads");
  expect_error(R"({"input": {"height": 1, "width": 1}, "threads": 1025})", "threads");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "instances": 18446744073709551615})",
      "instances");
}

TEST_F(model_config_test, missing_required_keys_are_errors) {
  expect_error(R"({})", "input.height");
  expect_error(R"({"input": {"height": 28}})", "input.width");
  expect_error(R"({"input": {"type": "tensor"}})", "input.shape");
}

TEST_F(model_config_test, shape_rules) {
  expect_error(R"({"input": {"height": 28, "width": 28, "shape": [3, 28, 28]}})",
               "input.shape");
  expect_error(R"({"input": {"type": "tensor", "shape": []}})", "input.shape");
  expect_error(R"({"input": {"type": "tensor", "shape": [2, 0]}})", "input.shape[1]");
  expect_error(R"({"input": {"type": "tensor", "shape": [4096, 4097]}})", "input.shape");
  expect_error(R"({"input": {"type": "tensor", "shape": [2], "height": 2}})",
               "input.height");
}

TEST_F(model_config_test, mean_and_std_rules) {
  expect_error(R"({"input": {"height": 28, "width": 28, "mean": [0.1, 0.2]}})",
               "input.mean");
  expect_error(R"({"input": {"height": 28, "width": 28, "mean": []}})", "input.mean");
  expect_error(R"({"input": {"height": 28, "width": 28, "std": [0]}})", "input.std[0]");
  expect_error(R"({"input": {"height": 28, "width": 28, "std": [1, -1, 1]}})",
               "input.std[1]");
  expect_error(
      R"({"input": {"height": 28, "width": 28, "channels": 1, "std": [1, 1, 1]}})",
      "input.std");
}

TEST_F(model_config_test, labels_must_stay_in_the_model_folder) {
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "output": {"labels": "../x.txt"}})",
      "output.labels");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "output": {"labels": "a/../../x"}})",
      "output.labels");
  expect_error(
      R"({"input": {"height": 1, "width": 1}, "output": {"labels": "/etc/passwd"}})",
      "output.labels");
  expect_error(R"({"input": {"height": 1, "width": 1}, "output": {"labels": ""}})",
               "output.labels");
}

TEST_F(model_config_test, traffic_and_default_version_rules) {
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": {"v1": 10}})",
               "traffic");
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": {"01": 10}})",
               "traffic");
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": {"1": -1}})",
               "traffic.1");
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": {"1": "10"}})",
               "traffic.1");
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": {"1": 0, "2": 0}})",
               "traffic");
  expect_error(R"({"input": {"height": 1, "width": 1}, "traffic": {}})", "traffic");
  expect_error(R"({"input": {"height": 1, "width": 1}, "default_version": "abc"})",
               "default_version");
  expect_error(R"({"input": {"height": 1, "width": 1}, "default_version": 0})",
               "default_version");
  expect_error(R"({"input": {"height": 1, "width": 1}, "default_version": "0"})",
               "default_version");
}

TEST_F(model_config_test, warmup_defaults_values_and_rules) {
  auto plain = load(R"({"input": {"height": 1, "width": 1}})");
  EXPECT_EQ(plain.warmup.batch_sizes, std::vector<int32_t>{1});
  EXPECT_EQ(plain.warmup.count, 1);
  auto set =
      load(R"({"input": {"height": 1, "width": 1}, "batching": {"max_batch_size": 8},
                      "warmup": {"batch_sizes": [1, 8], "count": 2}})");
  EXPECT_EQ(set.warmup.batch_sizes, (std::vector<int32_t>{1, 8}));
  EXPECT_EQ(set.warmup.count, 2);
  EXPECT_EQ(load(R"({"input": {"height": 1, "width": 1}, "warmup": {"count": 0}})")
                .warmup.count,
            0);
  const std::string image = R"({"input": {"height": 1, "width": 1}, )";
  expect_error(image + R"("warmup": {"batch_sizes": []}})", "warmup.batch_sizes");
  expect_error(image + R"("warmup": {"batch_sizes": 4}})", "warmup.batch_sizes");
  expect_error(image + R"("warmup": {"batch_sizes": [1, 0]}})", "warmup.batch_sizes[1]");
  expect_error(image + R"("warmup": {"batch_sizes": [33]}})", "warmup.batch_sizes[0]");
  expect_error(image + R"("warmup": {"count": -1}})", "warmup.count");
  expect_error(image + R"("warmup": {"rounds": 2}})", "warmup.rounds");
  expect_error(image + R"("warmup": [1]})", "warmup");
}

TEST_F(model_config_test, response_cache_is_off_unless_enabled) {
  const std::string image = R"({"input": {"height": 1, "width": 1})";
  EXPECT_FALSE(load(image + "}").response_cache.enable);
  EXPECT_FALSE(load(image + R"(, "response_cache": {}})").response_cache.enable);
  EXPECT_FALSE(
      load(image + R"(, "response_cache": {"enable": false}})").response_cache.enable);
  auto on = load(image + R"(, "response_cache": {"enable": true}})");
  EXPECT_TRUE(on.response_cache.enable);
  // Turning it on or off is a change: a reload applies it.
  EXPECT_NE(on, load(image + "}"));
  expect_error(image + R"(, "response_cache": {"enable": 1}})", "response_cache.enable");
  expect_error(image + R"(, "response_cache": {"enable": "yes"}})",
               "response_cache.enable");
  expect_error(image + R"(, "response_cache": {"ttl_s": 5}})", "response_cache.ttl_s");
  expect_error(image + R"(, "response_cache": true})", "response_cache");
}

TEST_F(model_config_test, equal_configs_compare_equal) {
  const std::string text =
      R"({"input": {"height": 2, "width": 2}, "output": {"top_k": 3}})";
  EXPECT_EQ(load(text), load(text));
  EXPECT_NE(load(text), load(R"({"input": {"height": 2, "width": 2}})"));
  EXPECT_NE(load(text),
            load(R"({"input": {"height": 2, "width": 2}, "output": {"top_k": 3},
                                 "warmup": {"count": 2}})"));
}

TEST_F(model_config_test, malformed_or_missing_file_names_the_file) {
  std::string file = (dir_.path() / "config.json").string();
  std::string message = error_of([&] { load(R"({"input": {"height": 28,)"); });
  EXPECT_TRUE(contains(message, file + ": invalid JSON")) << message;
  message = error_of([&] { load(R"([1, 2])"); });
  EXPECT_TRUE(contains(message, file + ": must be a JSON object")) << message;
  message = error_of([&] { load(""); });
  EXPECT_TRUE(contains(message, file)) << message;
  fs::path missing = dir_.path() / "missing.json";
  message = error_of([&] { load_model_config(missing); });
  EXPECT_TRUE(contains(message, missing.string() + ": cannot read")) << message;
  message = error_of([&] { load_model_config(dir_.path()); });
  EXPECT_TRUE(contains(message, dir_.path().string())) << message;
}

TEST_F(model_config_test, labels_are_lines) {
  using labels = std::vector<std::string>;
  EXPECT_EQ(load_labels(write(dir_, "a.txt", "zero\r\none\n\nthree\n")),
            (labels{"zero", "one", "", "three"}));
  EXPECT_EQ(load_labels(write(dir_, "b.txt", "zero\none\n\n")), (labels{"zero", "one"}));
  EXPECT_EQ(load_labels(write(dir_, "c.txt", "zero\none")), (labels{"zero", "one"}));
  EXPECT_EQ(load_labels(write(dir_, "d.txt", "")), labels{});
  fs::path missing = dir_.path() / "missing.txt";
  std::string message = error_of([&] { load_labels(missing); });
  EXPECT_TRUE(contains(message, missing.string())) << message;
}

// --- server options -----------------------------------------------------------

class server_options_test : public ::testing::Test {
protected:
  /// Parses `args` as if given after the program name.
  command_line parse(const std::vector<std::string>& args) {
    std::vector<const char*> argv{"actorserve"};
    for (const std::string& arg : args)
      argv.push_back(arg.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
  }

  std::string parse_error(const std::vector<std::string>& args) {
    return error_of([&] { parse(args); });
  }

  temp_dir dir_;
  // Keys in the environment of whoever runs the tests must not leak in.
  env_guard api_keys_{"ACTORSERVE_API_KEYS", std::nullopt};
  env_guard admin_keys_{"ACTORSERVE_ADMIN_KEYS", std::nullopt};
  env_guard redis_url_{"ACTORSERVE_REDIS_URL", std::nullopt};
};

TEST_F(server_options_test, defaults) {
  command_line result = parse({});
  const server_options defaults;
  EXPECT_FALSE(result.help);
  EXPECT_EQ(result.options.model_repository, defaults.model_repository);
  EXPECT_EQ(result.options.host, "127.0.0.1");
  EXPECT_EQ(result.options.port, 8080);
  EXPECT_FALSE(result.options.allow_unauthenticated);
  EXPECT_EQ(result.options.max_body_bytes, 10 * 1024 * 1024);
  EXPECT_EQ(result.options.log_format, "json");
  EXPECT_EQ(result.options.log_level, "info");
  EXPECT_EQ(result.options.actor_scheduler, "sharing");
  EXPECT_EQ(result.options.torch_threads, 0); // 0 = by the CPU budget
  EXPECT_EQ(result.options.instances, 0);
  EXPECT_TRUE(result.options.api_keys.empty());
  EXPECT_TRUE(result.options.admin_keys.empty());
  EXPECT_NO_THROW(validate(defaults));
}

TEST_F(server_options_test, flag_values_with_space_or_equals) {
  EXPECT_EQ(parse({"--port", "9000"}).options.port, 9000);
  EXPECT_EQ(parse({"--port=9000"}).options.port, 9000);
  EXPECT_EQ(parse({"--port=0"}).options.port, 0);
  command_line result =
      parse({"--model-repository", "/srv/models", "--host=localhost", "--max-body-bytes",
             "1024", "--log-format=text", "--log-level", "debug", "--drain-timeout-s=0"});
  EXPECT_EQ(result.options.model_repository, "/srv/models");
  EXPECT_EQ(result.options.host, "localhost");
  EXPECT_EQ(result.options.max_body_bytes, 1024);
  EXPECT_EQ(result.options.log_format, "text");
  EXPECT_EQ(result.options.log_level, "debug");
  EXPECT_EQ(result.options.drain_timeout_s, 0);
  EXPECT_EQ(parse({"--actor-scheduler=work-stealing"}).options.actor_scheduler,
            "work-stealing");
  EXPECT_EQ(parse({"--torch-threads", "3"}).options.torch_threads, 3);
  EXPECT_EQ(parse({"--instances=2"}).options.instances, 2);
}

TEST_F(server_options_test, help_flag) {
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-h"}).help);
  EXPECT_TRUE(parse({"--port", "9000", "--help"}).help);
}

TEST_F(server_options_test, config_file_is_overridden_by_flags) {
  fs::path file = write(dir_, "server.json", R"({"port": 9001, "host": "localhost",
      "log_level": "debug", "max_body_bytes": 2048, "http_threads": 4})");
  // --config is read first wherever it stands.
  command_line result =
      parse({"--port", "9002", "--config", file.string(), "--http-threads=8"});
  EXPECT_EQ(result.options.port, 9002);
  EXPECT_EQ(result.options.host, "localhost");
  EXPECT_EQ(result.options.log_level, "debug");
  EXPECT_EQ(result.options.max_body_bytes, 2048);
  EXPECT_EQ(result.options.http_threads, 8);
  EXPECT_EQ(parse({"--config=" + file.string()}).options.port, 9001);
}

TEST_F(server_options_test, keys_from_environment) {
  env_guard api{"ACTORSERVE_API_KEYS", " alpha, beta,,gamma ,"};
  env_guard admin{"ACTORSERVE_ADMIN_KEYS", "root"};
  command_line result = parse({});
  EXPECT_EQ(result.options.api_keys,
            (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ(result.options.admin_keys, (std::vector<std::string>{"root"}));
}

TEST_F(server_options_test, environment_overrides_config_file_keys) {
  fs::path file =
      write(dir_, "server.json",
            R"({"api_keys": ["from-file"], "admin_keys": ["admin-from-file"]})");
  env_guard api{"ACTORSERVE_API_KEYS", "from-env"};
  command_line result = parse({"--config", file.string()});
  EXPECT_EQ(result.options.api_keys, (std::vector<std::string>{"from-env"}));
  EXPECT_EQ(result.options.admin_keys, (std::vector<std::string>{"admin-from-file"}));
}

TEST_F(server_options_test,
       redis_url_from_environment_file_or_flag_without_its_password) {
  fs::path file =
      write(dir_, "server.json", R"({"redis_url": "redis://:file-pw@file-host:6379/0"})");
  env_guard url{"ACTORSERVE_REDIS_URL", "redis://:env-pw@env-host:6380/1"};
  EXPECT_EQ(parse({"--config", file.string()}).options.redis_url,
            "redis://:env-pw@env-host:6380/1");
  EXPECT_EQ(parse({"--redis-url", "redis://flag-host", "--config", file.string()})
                .options.redis_url,
            "redis://flag-host");
  // Redis stores need a URL; a bad URL is named without its password.
  EXPECT_TRUE(contains(parse_error({"--redis-url", "", "--job-store", "redis"}),
                       "job_store (--job-store)"));
  EXPECT_TRUE(
      contains(parse_error({"--redis-url", "", "--cache", "redis"}), "cache (--cache)"));
  auto message = parse_error({"--redis-url", "redis://:hunter2@h:99999"});
  EXPECT_TRUE(contains(message, "redis_url (--redis-url)")) << message;
  EXPECT_FALSE(contains(message, "hunter2")) << message;
}

TEST_F(server_options_test, bad_flags_are_named) {
  std::string message = parse_error({"--prot", "9000"});
  EXPECT_TRUE(contains(message, "--prot")) << message;
  message = parse_error({"--port"});
  EXPECT_TRUE(contains(message, "--port: missing value")) << message;
  message = parse_error({"--host", "--port", "9000"});
  EXPECT_TRUE(contains(message, "--host: missing value")) << message;
  message = parse_error({"--config"});
  EXPECT_TRUE(contains(message, "--config: missing value")) << message;
  message = parse_error({"models"});
  EXPECT_TRUE(contains(message, "\"models\"")) << message;
  message = parse_error({"-p", "9000"});
  EXPECT_TRUE(contains(message, "\"-p\"")) << message;
  message = parse_error({"--allow-unauthenticated=maybe"});
  EXPECT_TRUE(contains(message, "--allow-unauthenticated")) << message;
  message = parse_error({"--api-keys", "secret"});
  EXPECT_TRUE(contains(message, "--api-keys: unknown flag")) << message;
}

TEST_F(server_options_test, bad_numbers_are_named) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--port", "abc"},
                                             {"--port=80x"},
                                             {"--port", "70000"},
                                             {"--port", "-1"},
                                             {"--port", ""},
                                             {"--port", "99999999999999999999999"}}) {
    std::string message = parse_error(args);
    EXPECT_TRUE(contains(message, "--port: must be an integer")) << message;
  }
  std::string message = parse_error({"--http-threads=0"});
  EXPECT_TRUE(contains(message, "--http-threads")) << message;
  message = parse_error({"--log-format", "xml"});
  EXPECT_TRUE(contains(message, "--log-format")) << message;
  message = parse_error({"--log-level", "verbose"});
  EXPECT_TRUE(contains(message, "--log-level")) << message;
  message = parse_error({"--actor-scheduler", "stealing"});
  EXPECT_TRUE(
      contains(message, "--actor-scheduler: must be one of sharing|work-stealing"))
      << message;
}

TEST_F(server_options_test, bad_config_files_name_file_and_key) {
  fs::path file = write(dir_, "server.json", R"({"port": 9000, "prot": 9001})");
  std::string message = parse_error({"--config", file.string()});
  EXPECT_TRUE(contains(message, file.string() + ": prot: unknown key")) << message;

  file = write(dir_, "types.json", R"({"port": "9000"})");
  message = parse_error({"--config", file.string()});
  EXPECT_TRUE(contains(message, file.string() + ": port: must be an integer")) << message;

  file = write(dir_, "range.json", R"({"max_body_bytes": 0})");
  message = parse_error({"--config", file.string()});
  EXPECT_TRUE(contains(message, file.string() + ": max_body_bytes")) << message;

  file = write(dir_, "keys.json", R"({"api_keys": "not-an-array"})");
  message = parse_error({"--config", file.string()});
  EXPECT_TRUE(contains(message, file.string() + ": api_keys")) << message;
  EXPECT_FALSE(contains(message, "not-an-array"))
      << "keys must not be echoed: " << message;

  file = write(dir_, "malformed.json", R"({"port": )");
  message = parse_error({"--config", file.string()});
  EXPECT_TRUE(contains(message, file.string() + ": invalid JSON")) << message;

  fs::path missing = dir_.path() / "missing.json";
  message = parse_error({"--config", missing.string()});
  EXPECT_TRUE(contains(message, missing.string())) << message;
}

TEST_F(server_options_test, non_loopback_host_needs_keys_or_explicit_consent) {
  std::string message = parse_error({"--host", "0.0.0.0"});
  EXPECT_TRUE(contains(message, "host")) << message;
  EXPECT_TRUE(contains(message, "--allow-unauthenticated")) << message;

  command_line result = parse({"--host", "0.0.0.0", "--allow-unauthenticated"});
  EXPECT_TRUE(result.options.allow_unauthenticated);
  EXPECT_EQ(result.options.host, "0.0.0.0");

  fs::path file = write(dir_, "server.json", R"({"admin_keys": ["k"]})");
  EXPECT_NO_THROW(parse({"--host", "0.0.0.0", "--config", file.string()}));
  file = write(dir_, "consent.json", R"({"host": "::", "allow_unauthenticated": true})");
  EXPECT_NO_THROW(parse({"--config", file.string()}));
  {
    env_guard api{"ACTORSERVE_API_KEYS", "k"};
    EXPECT_NO_THROW(parse({"--host", "10.1.2.3"}));
  }
  EXPECT_NO_THROW(parse({"--host", "127.0.0.2"}));
  EXPECT_NO_THROW(parse({"--host", "::1"}));
}

TEST_F(server_options_test, validate_checks_ranges_and_names_keys) {
  auto validate_error = [](const server_options& options) {
    return error_of([&] { validate(options); });
  };
  server_options options;
  options.http_threads = 0;
  EXPECT_TRUE(contains(validate_error(options), "http_threads"));
  options = {};
  options.port = 65536;
  EXPECT_TRUE(contains(validate_error(options), "port"));
  options = {};
  options.log_format = "xml";
  EXPECT_TRUE(contains(validate_error(options), "log_format"));
  options = {};
  options.log_level = "loud";
  EXPECT_TRUE(contains(validate_error(options), "log_level"));
  options = {};
  options.max_body_bytes = 0;
  EXPECT_TRUE(contains(validate_error(options), "max_body_bytes"));
  options = {};
  options.default_timeout_ms = options.max_timeout_ms + 1;
  EXPECT_TRUE(contains(validate_error(options), "default_timeout_ms"));
  options = {};
  options.host = "";
  EXPECT_TRUE(contains(validate_error(options), "host"));
  options = {};
  options.host = "192.168.0.1";
  EXPECT_TRUE(contains(validate_error(options), "--allow-unauthenticated"));
  options.api_keys = {"k"};
  EXPECT_NO_THROW(validate(options));
}

TEST_F(server_options_test, rate_limits_and_trusted_proxies) {
  command_line result = parse({"--predict-rate-per-s", "0", "--anonymous-burst=5",
                               "--trusted-proxies", "10.0.0.1, ::1"});
  EXPECT_EQ(result.options.predict_rate_per_s, 0); // 0: no limit
  EXPECT_EQ(result.options.anonymous_burst, 5);
  EXPECT_EQ(result.options.trusted_proxies, "10.0.0.1, ::1");
  std::string message = parse_error({"--trusted-proxies", "10.0.0.1,proxy.local"});
  EXPECT_TRUE(contains(message, "trusted_proxies (--trusted-proxies)")) << message;
  EXPECT_TRUE(contains(message, "\"proxy.local\"")) << message;
  message = parse_error({"--predict-burst", "0"});
  EXPECT_TRUE(contains(message, "--predict-burst")) << message;
  message = parse_error({"--max-header-bytes", "10"});
  EXPECT_TRUE(contains(message, "--max-header-bytes")) << message;
}

TEST(is_loopback_address, recognises_loopback_hosts) {
  for (const char* host : {"localhost", "LocalHost", "127.0.0.1", "127.1.2.255", "::1",
                           "[::1]", "0:0:0:0:0:0:0:1"})
    EXPECT_TRUE(is_loopback_address(host)) << host;
  for (const char* host : {"", "0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "127.0.0",
                           "127.0.0.1.5", "127.0.0.256", "127.-1.0.1", "127.0.0.1x",
                           "localhost.example.com", "[::1", "example.com"})
    EXPECT_FALSE(is_loopback_address(host)) << host;
}

TEST(help_text, mentions_every_flag_key_and_default) {
  std::string help = help_text();
  for (const char* flag : {"--model-repository",
                           "--host",
                           "--port",
                           "--config",
                           "--help",
                           "-h",
                           "--allow-unauthenticated",
                           "--http-threads",
                           "--keep-alive-max-count",
                           "--keep-alive-timeout-s",
                           "--read-timeout-s",
                           "--write-timeout-s",
                           "--max-body-bytes",
                           "--max-instances-per-request",
                           "--max-image-pixels",
                           "--default-timeout-ms",
                           "--max-timeout-ms",
                           "--load-timeout-s",
                           "--torch-threads",
                           "--actor-threads",
                           "--actor-scheduler",
                           "--job-ttl-s",
                           "--max-jobs",
                           "--max-job-bytes",
                           "--drain-timeout-s",
                           "--log-format",
                           "--log-level"})
    EXPECT_TRUE(contains(help, flag)) << flag;
  for (const char* key : {"model_repository", "max_body_bytes", "api_keys", "admin_keys",
                          "ACTORSERVE_API_KEYS", "ACTORSERVE_ADMIN_KEYS"})
    EXPECT_TRUE(contains(help, key)) << key;
  const server_options defaults;
  EXPECT_TRUE(contains(help, "8080"));
  EXPECT_TRUE(contains(help, "127.0.0.1"));
  EXPECT_TRUE(contains(help, defaults.model_repository));
  EXPECT_TRUE(contains(help, std::to_string(defaults.max_body_bytes)));
}

TEST(help_text, does_not_print_keys_from_the_environment) {
  env_guard api{"ACTORSERVE_API_KEYS", "very-secret-key"};
  EXPECT_FALSE(contains(help_text(), "very-secret-key"));
}

} // namespace
} // namespace actorserve
