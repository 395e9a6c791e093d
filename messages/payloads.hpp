#pragma once

// Payloads of actorserve's messages: plain data (shapes and floats, strings,
// numbers) with `inspect` overloads, so the same message works in-process and
// across nodes. Every type here is registered in messages/type_ids.hpp.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "config/model_config.hpp"

namespace actorserve {

/// A dense float32 tensor, row-major. shape[0] is the batch dimension.
struct tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

/// Elements per batch row: the product of shape[1..].
int64_t row_size(const tensor& x);

/// Rows [first, first + count) of `x` as a tensor of their own.
tensor slice_rows(const tensor& x, int64_t first, int64_t count);

/// Joins tensors with equal row shapes along the batch dimension.
tensor concat_rows(const std::vector<tensor>& parts);

/// What HTTP needs to turn a request into a tensor and an output tensor into
/// predictions. Built by the router from config.json and labels.txt.
struct model_spec {
  std::string name;
  input_spec input;
  output_spec output;
  std::vector<std::string> labels;
  bool response_cache = false; // config.json enables it: doors digest the input
};

/// One predict call: a batch of preprocessed instances for one model.
struct predict_request {
  std::string version; // pinned version; empty: router's choice
  tensor input;
  int64_t timeout_ms = 0;  // budget left when sent; 0: none beyond the asker's
  uint64_t cancel_key = 0; // set by the door that may cancel it; 0: cannot be cancelled
  int32_t priority =
      0; // 1: highest; 0: the model's lowest level (batching.priority_levels)
  // SHA-256 of `input` (messages/digest.hpp), set by the door when the
  // model's response cache is on; empty: the answer is neither looked up nor stored.
  std::string input_digest{};
};

/// The answer to a predict_request: which version ran it, and its output
/// rows in the order of the input rows.
struct predict_reply {
  std::string version;
  tensor output;
  std::string node;    // the node that ran it, when a replica set chose one
  std::string cache{}; // "hit" or "miss" when the response cache took part, else ""
};

/// How to present a model's output, from a request's `parameters`.
struct output_options {
  int32_t top_k = 0;       // 0: the model's output.top_k
  bool raw_output = false; // add the raw row to classifications
};

enum class version_state : uint8_t { loading, available, draining, failed, unloaded };

std::string to_string(version_state state);

struct version_status {
  std::string version;
  version_state state = version_state::loading;
  std::string error;        // why it failed, when it did
  int64_t load_time_ms = 0; // loading plus warm-up
  std::string node;         // the node that hosts this copy of the version
  int32_t instances = 0;    // model instances it runs on (0: not known yet)
  int32_t threads = 0;      // intra-op threads of each instance
};

struct model_status {
  std::string name;
  std::string default_version;
  std::map<std::string, int32_t> traffic;
  std::vector<version_status> versions;
};

/// True when at least one version of the model is available.
bool is_serving(const model_status& status);

/// One status for a model hosted on several nodes: every node's versions
/// (each names its node), the default and traffic of the first. `parts`
/// must not be empty.
model_status merge_statuses(std::vector<model_status> parts);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tensor& x) {
  return f(caf::meta::type_name("actorserve::tensor"), x.shape, x.values);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_spec& x) {
  return f(caf::meta::type_name("actorserve::model_spec"), x.name, x.input, x.output,
           x.labels, x.response_cache);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, predict_request& x) {
  return f(caf::meta::type_name("actorserve::predict_request"), x.version, x.input,
           x.timeout_ms, x.cancel_key, x.priority, x.input_digest);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, predict_reply& x) {
  return f(caf::meta::type_name("actorserve::predict_reply"), x.version, x.output, x.node,
           x.cache);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, output_options& x) {
  return f(caf::meta::type_name("actorserve::output_options"), x.top_k, x.raw_output);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, version_status& x) {
  return f(caf::meta::type_name("actorserve::version_status"), x.version, x.state,
           x.error, x.load_time_ms, x.node, x.instances, x.threads);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_status& x) {
  return f(caf::meta::type_name("actorserve::model_status"), x.name, x.default_version,
           x.traffic, x.versions);
}

} // namespace actorserve
