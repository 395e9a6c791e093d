// The five ways from a non-actor (HTTP) thread into an actor and back, each
// measured against the same trivial echo actor in one process
// (../shared/CAF-0.17-NOTES.md, "Bridging HTTP threads into actors"):
//
//   scoped       a caf::scoped_actor made for each request
//   scoped_tl    one caf::scoped_actor per thread (thread_local), reused
//   fview        caf::make_function_view(echo, 1 s) per thread, reused
//   oneshot      a one-shot event-based actor that makes the request and
//                fulfils a std::promise (actorserve's bridge until 2026-12)
//   ask          actorserve::ask<> (http/bridge.hpp): the request enqueued
//                from the calling thread with a reply sink as its sender,
//                which fulfils a std::promise on the replying thread
//
//   bridge_bench [--calls 20000] [--threads 1,8] [--json FILE]
//
// For each way and thread count, `calls` round trips are made in total
// (split over the threads, all running at once) after a warm-up; every round
// trip is timed on its own. Prints median and p99 in microseconds and the
// aggregate round trips per second. The actor system uses CAF's defaults, as
// actorserve does (scheduler threads = cores).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "http/bridge.hpp"
#include "messages/type_ids.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using echo_actor = caf::typed_actor<caf::replies_to<int32_t>::with<int32_t>>;

constexpr auto timeout = std::chrono::seconds{1};

echo_actor::behavior_type echo() {
  return {[](int32_t x) { return x; }};
}

/// One round trip: sends `x`, returns the echoed value or -1 on error.
using round_trip = std::function<int32_t(int32_t)>;

/// Makes a thread's round-trip function; called once per worker thread.
using bridge_factory = std::function<round_trip()>;

struct bridge {
  std::string name;
  std::string description;
  bridge_factory make;
};

thread_local std::optional<caf::scoped_actor> thread_scoped;

std::vector<bridge> bridges(caf::actor_system& system, const echo_actor& dest) {
  return {
      {"scoped", "scoped_actor per request",
       [&system, dest] {
         return [&system, dest](int32_t x) {
           caf::scoped_actor self{system};
           int32_t y = -1;
           self->request(dest, timeout, x)
               .receive([&](int32_t r) { y = r; }, [&](caf::error&) { y = -1; });
           return y;
         };
       }},
      {"scoped_tl", "one scoped_actor per thread (thread_local)",
       [&system, dest] {
         return [&system, dest](int32_t x) {
           if (!thread_scoped)
             thread_scoped.emplace(system);
           auto& self = *thread_scoped;
           int32_t y = -1;
           self->request(dest, timeout, x)
               .receive([&](int32_t r) { y = r; }, [&](caf::error&) { y = -1; });
           return y;
         };
       }},
      {"fview", "make_function_view(echo, 1 s) per thread",
       [dest] {
         auto view = std::make_shared<caf::function_view<echo_actor>>(
             caf::make_function_view(dest, caf::duration{timeout}));
         return [view](int32_t x) {
           auto r = (*view)(x);
           return r ? *r : -1;
         };
       }},
      {"oneshot", "one-shot event-based actor + std::promise",
       [&system, dest] {
         return [&system, dest](int32_t x) {
           auto answer = std::make_shared<std::promise<int32_t>>();
           auto result = answer->get_future();
           system.spawn([answer, dest, x](caf::event_based_actor* self) {
             self->request(dest, timeout, x)
                 .then([answer](int32_t r) { answer->set_value(r); },
                       [answer](caf::error&) { answer->set_value(-1); });
           });
           return result.get();
         };
       }},
      {"ask", "reply sink + std::promise (actorserve::ask)",
       [&system, dest] {
         return [&system, dest](int32_t x) {
           auto r = actorserve::ask<int32_t>(
               system, dest,
               std::chrono::duration_cast<std::chrono::milliseconds>(timeout), x);
           return r ? std::get<0>(*r) : -1;
         };
       }},
  };
}

struct measurement {
  std::string bridge;
  int threads = 0;
  int64_t calls = 0;
  int64_t errors = 0;
  double median_us = 0;
  double p99_us = 0;
  double calls_per_s = 0;
};

double percentile(std::vector<double>& xs, double q) {
  auto k =
      std::min(xs.size() - 1, static_cast<size_t>(q * static_cast<double>(xs.size())));
  std::nth_element(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(k), xs.end());
  return xs[k];
}

measurement run(const bridge& way, int threads, int64_t calls) {
  const int64_t per_thread = std::max<int64_t>(1, calls / threads);
  const int64_t warmup = std::max<int64_t>(100, per_thread / 10);
  std::vector<std::vector<double>> samples(static_cast<size_t>(threads));
  std::atomic<int64_t> errors{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  clock_type::time_point started;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto call = way.make();
      auto& mine = samples[static_cast<size_t>(t)];
      mine.reserve(static_cast<size_t>(per_thread));
      for (int64_t i = 0; i < warmup; ++i)
        call(static_cast<int32_t>(i));
      ready.fetch_add(1);
      while (!go.load())
        std::this_thread::yield();
      for (int64_t i = 0; i < per_thread; ++i) {
        auto x = static_cast<int32_t>(i + t);
        auto before = clock_type::now();
        auto y = call(x);
        auto after = clock_type::now();
        if (y != x)
          errors.fetch_add(1);
        mine.push_back(std::chrono::duration<double, std::micro>(after - before).count());
      }
      thread_scoped.reset(); // before the actor system goes away
    });
  }
  while (ready.load() < threads)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  started = clock_type::now();
  go.store(true);
  for (auto& w : workers)
    w.join();
  auto elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
  std::vector<double> all;
  for (auto& s : samples)
    all.insert(all.end(), s.begin(), s.end());
  measurement m;
  m.bridge = way.name;
  m.threads = threads;
  m.calls = static_cast<int64_t>(all.size());
  m.errors = errors.load();
  m.calls_per_s = static_cast<double>(all.size()) / elapsed;
  m.median_us = percentile(all, 0.5);
  m.p99_us = percentile(all, 0.99);
  return m;
}

std::vector<int> parse_threads(const std::string& text) {
  std::vector<int> values;
  std::stringstream in{text};
  std::string item;
  while (std::getline(in, item, ','))
    if (auto n = std::atoi(item.c_str()); n > 0)
      values.push_back(n);
  return values;
}

[[noreturn]] void usage(int code) {
  std::cerr << "usage: bridge_bench [--calls N] [--threads 1,8] [--json FILE]\n";
  std::exit(code);
}

} // namespace

int main(int argc, char** argv) {
  int64_t calls = 20000;
  std::vector<int> thread_counts{1, 8};
  std::string json;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc && arg != "-h" && arg != "--help")
      usage(2);
    if (arg == "--calls")
      calls = std::atoll(argv[++i]);
    else if (arg == "--threads")
      thread_counts = parse_threads(argv[++i]);
    else if (arg == "--json")
      json = argv[++i];
    else if (arg == "-h" || arg == "--help")
      usage(0);
    else
      usage(2);
  }
  if (calls < 1 || thread_counts.empty())
    usage(2);

  caf::actor_system_config cfg; // never parse(): no caf-application.ini
  actorserve::register_message_types(cfg);
  std::vector<measurement> results;
  {
    caf::actor_system system{cfg};
    auto dest = system.spawn(echo);
    std::printf("%-10s %-46s %7s %9s %10s %10s %12s %7s\n", "bridge", "how", "threads",
                "calls", "p50 us", "p99 us", "calls/s", "errors");
    for (auto threads : thread_counts) {
      for (const auto& way : bridges(system, dest)) {
        auto m = run(way, threads, calls);
        results.push_back(m);
        std::printf("%-10s %-46s %7d %9lld %10.1f %10.1f %12.0f %7lld\n",
                    way.name.c_str(), way.description.c_str(), threads,
                    static_cast<long long>(m.calls), m.median_us, m.p99_us, m.calls_per_s,
                    static_cast<long long>(m.errors));
        std::fflush(stdout);
      }
    }
    caf::anon_send_exit(dest, caf::exit_reason::user_shutdown);
  }
  if (!json.empty()) {
    std::ofstream out{json};
    out << "[";
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& m = results[i];
      out << (i ? ",\n " : "") << "{\"bridge\": \"" << m.bridge
          << "\", \"threads\": " << m.threads << ", \"calls\": " << m.calls
          << ", \"errors\": " << m.errors << ", \"p50_us\": " << m.median_us
          << ", \"p99_us\": " << m.p99_us << ", \"calls_per_s\": " << m.calls_per_s
          << "}";
    }
    out << "]\n";
    if (!out) {
      std::cerr << "bridge_bench: cannot write " << json << "\n";
      return 1;
    }
  }
  return 0;
}
