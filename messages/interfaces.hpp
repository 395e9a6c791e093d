#pragma once

// Every typed actor interface of actorserve, and the atoms they use. Handlers
// carry a one-line comment each. The path of a predict call: HTTP looks the
// model up in the registry's predictor directory (actors/predictor_directory.hpp),
// then HTTP --predict--> router --delegate--> batcher --forward--> model
// instance; the batcher answers the HTTP asker.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/payloads.hpp"

namespace actorserve::atom {

using predict = caf::atom_constant<caf::atom("predict")>;
using forward = caf::atom_constant<caf::atom("forward")>;
using load = caf::atom_constant<caf::atom("load")>;
using status = caf::atom_constant<caf::atom("status")>;
using list = caf::atom_constant<caf::atom("list")>;
using flush = caf::atom_constant<caf::atom("flush")>;
using expire = caf::atom_constant<caf::atom("expire")>;
using stats = caf::atom_constant<caf::atom("stats")>;
using submit = caf::atom_constant<caf::atom("submit")>;
using get = caf::atom_constant<caf::atom("get")>;
using cancel = caf::atom_constant<caf::atom("cancel")>;
using sweep = caf::atom_constant<caf::atom("sweep")>;
using reload = caf::atom_constant<caf::atom("reload")>;
using unload = caf::atom_constant<caf::atom("unload")>;
using traffic = caf::atom_constant<caf::atom("traffic")>;
using drain = caf::atom_constant<caf::atom("drain")>;
using restart = caf::atom_constant<caf::atom("restart")>;
using join = caf::atom_constant<caf::atom("join")>;
using catalog = caf::atom_constant<caf::atom("catalog")>;
using sync = caf::atom_constant<caf::atom("sync")>;
using replicas = caf::atom_constant<caf::atom("replicas")>;

constexpr predict predict_v{};
constexpr forward forward_v{};
constexpr load load_v{};
constexpr status status_v{};
constexpr list list_v{};
constexpr flush flush_v{};
constexpr expire expire_v{};
constexpr stats stats_v{};
constexpr submit submit_v{};
constexpr get get_v{};
constexpr cancel cancel_v{};
constexpr sweep sweep_v{};
constexpr reload reload_v{};
constexpr unload unload_v{};
constexpr traffic traffic_v{};
constexpr drain drain_v{};
constexpr restart restart_v{};
constexpr join join_v{};
constexpr catalog catalog_v{};
constexpr sync sync_v{};
constexpr replicas replicas_v{};

} // namespace actorserve::atom

namespace actorserve {

/// Runs forward calls of one model version on its module (shared by the
/// version's instances, see actors/model_instance.hpp). Detached: forward
/// calls block its own thread, never the scheduler.
using instance_actor = caf::typed_actor<
    // Loads the TorchScript archive (or waits for the instance sharing the
    // module to load it) and runs its warm-up forward calls; replies with the
    // load time in milliseconds, or an error saying why it failed.
    caf::replies_to<atom::load>::with<int64_t>,
    // Runs one forward call on a batch; replies with the output batch.
    caf::replies_to<atom::forward, tensor>::with<tensor>>;

/// Counters a batcher keeps about what batching does.
struct batcher_stats {
  int64_t batches = 0;
  int64_t batched_rows = 0;
  int64_t queue_depth = 0;
  int64_t rejected_overloaded = 0;
  int64_t expired = 0;
};

/// Queues the requests of one model version and feeds its instances batches.
using batcher_actor = caf::typed_actor<
    // Loads and warms up every instance; replies with the slowest load time.
    caf::replies_to<atom::load>::with<int64_t>,
    // Queues a request; answers it from its slices of the batch outputs.
    caf::replies_to<atom::predict, predict_request>::with<predict_reply>,
    // Replies with the batching counters.
    caf::replies_to<atom::stats>::with<batcher_stats>,
    // Stops taking requests: flushes what waits, answers what runs, then exits.
    caf::reacts_to<atom::drain>,
    // Withdraws the request with this cancel key: a queued one leaves the queue
    // uncomputed, a running one's result is dropped; it is answered `cancelled`.
    caf::reacts_to<atom::cancel, uint64_t>>;

/// What one cached answer is stored under. The output options (top_k,
/// raw_output) are not part of it although ../shared/API.md lists them: the
/// cache stores the model's raw output tensor and every door renders it
/// after the cache, so the options cannot change the stored value, and v1,
/// OIP and TF Serving requests for the same input share one entry.
struct response_cache_key {
  std::string model;
  std::string version;        // the version that answers (the router's choice)
  std::string model_identity; // SHA-256 of that version's model.pt, as loaded
  std::string input_digest;   // SHA-256 of the preprocessed input (the door's)
};

/// One per node: the response cache of the models that enable it (memory,
/// or Redis shared by nodes). A router asks it instead of the batcher.
using response_cache_actor = caf::typed_actor<
    // Answers from the entry under the key ("hit"); else asks the batcher,
    // stores its answer and replies with it ("miss"). When the store fails
    // the request goes to the batcher all the same (counted as an error).
    caf::replies_to<atom::predict, batcher_actor, response_cache_key,
                    predict_request>::with<predict_reply>,
    // Passes a cancel on to the batcher of the miss with this cancel key, if
    // one waits: after the request itself, which the cache sent it first.
    caf::reacts_to<atom::cancel, uint64_t>>;

/// A traffic change: the default version ("" = highest available) and the
/// weights of unpinned requests (empty = all to the default).
struct traffic_split {
  std::string default_version;
  std::map<std::string, int32_t> weights;
};

/// Whoever answers the predictions of one model: its router on this node, or
/// the replica set that spreads them over the nodes hosting the model.
using predictor_actor = caf::typed_actor<
    // Runs the request on a version (pinned, weighted, default).
    caf::replies_to<atom::predict, predict_request>::with<predict_reply>,
    // Withdraws the request with this cancel key: a queued one leaves the queue
    // uncomputed, a running one's result is dropped; it is answered `cancelled`.
    caf::reacts_to<atom::cancel, uint64_t>>;

/// One per model: the version table, the choice of version, the spec.
using router_actor = caf::typed_actor<
    // Picks a version (pinned, weighted, default) and delegates to its batcher.
    caf::replies_to<atom::predict, predict_request>::with<predict_reply>,
    // Replies with the model's versions, states, default and traffic.
    caf::replies_to<atom::status>::with<model_status>,
    // Re-reads config.json, loads a version beside the one serving and swaps
    // once it is ready ("" = what is new, or every version when the config
    // changed); replies when the loads ended.
    caf::replies_to<atom::reload, std::string>::with<model_status>,
    // Drains and unloads a version; refused for the last available one.
    caf::replies_to<atom::unload, std::string>::with<model_status>,
    // Drains and unloads every version, then exits (normal exit reason).
    caf::replies_to<atom::unload>::with<model_status>,
    // Sets the default version and the weights of unpinned requests.
    caf::replies_to<atom::traffic, traffic_split>::with<model_status>,
    // Passes a cancel on to every batcher, draining ones included (the one
    // holding the key withdraws it; the others ignore it).
    caf::reacts_to<atom::cancel, uint64_t>>;

/// One model as the node hosting it advertises it to its peers.
struct hosted_model {
  model_spec spec;
  router_actor router;
  model_status status;
};

/// What a node hosts: its name and its models.
struct node_catalog {
  std::string node;
  std::vector<hosted_model> models;
};

/// One node's copy of a model, as a replica set sees it.
struct replica {
  std::string node;
  router_actor router;
  std::vector<std::string> versions; // available versions
  bool local = false;
};

/// One per model hosted on other nodes: spreads predictions over the
/// replicas (least outstanding requests, local first when equal). A replica
/// that goes away leaves at once; its pending requests go to another
/// replica, or are answered `unavailable` when none is left.
using replica_set_actor = predictor_actor::extend<
    // From the registry: the replicas now known (replaces the previous list).
    caf::reacts_to<atom::replicas, std::vector<replica>>>;

/// One per node: model name to router, and the node's view of the cluster.
using registry_actor = caf::typed_actor<
    // Replies with the status of every model, ordered by name.
    caf::replies_to<atom::list>::with<std::vector<model_status>>,
    // Replies with one model's status.
    caf::replies_to<atom::status, std::string>::with<model_status>,
    // Admin: forwards a reload (model, version or "") to the model's router.
    caf::replies_to<atom::reload, std::string, std::string>::with<model_status>,
    // Admin: forwards an unload (model, version) to the model's router.
    caf::replies_to<atom::unload, std::string, std::string>::with<model_status>,
    // Admin: loads a model folder (not loaded: spawns its router and replies
    // once it serves; loaded: a reload of what is new), on every node hosting it.
    caf::replies_to<atom::load, std::string>::with<model_status>,
    // Admin: drains and removes every version of a model on every node hosting
    // it; replies at once (the model is gone from listings and the directory).
    caf::replies_to<atom::unload, std::string>::with<model_status>,
    // Admin: forwards a traffic change to the model's router.
    caf::replies_to<atom::traffic, std::string, traffic_split>::with<model_status>,
    // A peer node introduces its registry (untyped: a typed interface
    // cannot name itself) and name; replies with this node's name. Both sides
    // then monitor each other and exchange catalogs.
    caf::replies_to<atom::join, caf::strong_actor_ptr, std::string>::with<std::string>,
    // Replies with what this node hosts (its own models only).
    caf::replies_to<atom::catalog>::with<node_catalog>>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hosted_model& x) {
  return f(caf::meta::type_name("actorserve::hosted_model"), x.spec, x.router, x.status);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_catalog& x) {
  return f(caf::meta::type_name("actorserve::node_catalog"), x.node, x.models);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica& x) {
  return f(caf::meta::type_name("actorserve::replica"), x.node, x.router, x.versions,
           x.local);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, response_cache_key& x) {
  return f(caf::meta::type_name("actorserve::response_cache_key"), x.model, x.version,
           x.model_identity, x.input_digest);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, traffic_split& x) {
  return f(caf::meta::type_name("actorserve::traffic_split"), x.default_version,
           x.weights);
}

/// An async job as submitted: the prepared request and where it goes.
struct job_submission {
  predictor_actor target;
  model_spec spec;
  predict_request request;
  output_options output;
};

enum class job_state : uint8_t { queued, running, succeeded, failed };

std::string to_string(job_state state);

/// A job as the store sees it now; `reply` is set once it succeeded,
/// `error` once it failed.
struct job_view {
  std::string id;
  job_state state = job_state::queued;
  model_spec spec;
  output_options output;
  predict_reply reply;
  caf::error error;
};

/// One per node: async jobs, id -> state and result, bounded and with a TTL.
using job_store_actor = caf::typed_actor<
    // Stores a job and starts it when a slot is free; replies with its id.
    caf::replies_to<atom::submit, job_submission>::with<std::string>,
    // Replies with the job's state and, once finished, its result or error.
    caf::replies_to<atom::get, std::string>::with<job_view>,
    // Cancels a queued job (it never runs) or forgets any other.
    caf::replies_to<atom::cancel, std::string>::with<bool>,
    // Replies with the number of stored jobs.
    caf::replies_to<atom::stats>::with<int64_t>,
    // Shutdown: refuses new submissions from now on; replies with the number
    // of jobs that were still queued or running once they have all finished.
    caf::replies_to<atom::drain>::with<int64_t>>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_submission& x) {
  return f(caf::meta::type_name("actorserve::job_submission"), x.target, x.spec,
           x.request, x.output);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_view& x) {
  return f(caf::meta::type_name("actorserve::job_view"), x.id, x.state, x.spec, x.output,
           x.reply, x.error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batcher_stats& x) {
  return f(caf::meta::type_name("actorserve::batcher_stats"), x.batches, x.batched_rows,
           x.queue_depth, x.rejected_overloaded, x.expired);
}

} // namespace actorserve
