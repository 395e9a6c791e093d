#include "telemetry/metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

#include "tests/test_support.hpp"

// Counts heap allocations while `counting` is set, to hold observe_request to
// its promise of no allocation once a series exists.
namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
} // namespace

[[gnu::noinline]] void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed))
    allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1))
    return p;
  throw std::bad_alloc{};
}
// Not inlined, so that GCC does not pair a malloc it cannot see with free.
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace actorserve {
namespace {

/// The value of the sample whose name and labels are exactly `series`
/// (labels sorted by name, as prometheus-cpp writes them); NaN when absent.
double sample(const std::string& text, const std::string& series) {
  std::istringstream lines{text};
  std::string line;
  while (std::getline(lines, line))
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  return std::nan("");
}

/// How many sample lines start with `prefix`.
size_t count_lines(const std::string& text, const std::string& prefix) {
  std::istringstream lines{text};
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line))
    n += line.compare(0, prefix.size(), prefix) == 0;
  return n;
}

const std::string predict = "/api/v1/models/{model}/predict";

// --- route_template -----------------------------------------------------------

TEST(RouteTemplate, EveryRouteOfTheApi) {
  struct {
    const char* method;
    std::string path;
    const char* expected;
  } cases[] = {
      {"POST", "/api/v1/models/digits/predict", "/api/v1/models/{model}/predict"},
      {"POST", "/api/v1/models/digits/versions/3/predict",
       "/api/v1/models/{model}/versions/{version}/predict"},
      {"POST", "/api/v1/models/digits/jobs", "/api/v1/models/{model}/jobs"},
      {"GET", "/api/v1/jobs/abc", "/api/v1/jobs/{job_id}"},
      {"DELETE", "/api/v1/jobs/0f3e-77", "/api/v1/jobs/{job_id}"},
      {"GET", "/api/v1/models", "/api/v1/models"},
      {"GET", "/api/v1/models/digits", "/api/v1/models/{model}"},
      {"POST", "/api/v1/models/digits/reload", "/api/v1/models/{model}/reload"},
      {"POST", "/api/v1/models/digits/load", "/api/v1/models/{model}/load"},
      {"POST", "/api/v1/models/digits/unload", "/api/v1/models/{model}/unload"},
      {"POST", "/api/v1/models/digits/versions/2/unload",
       "/api/v1/models/{model}/versions/{version}/unload"},
      {"PUT", "/api/v1/models/digits/traffic", "/api/v1/models/{model}/traffic"},
      {"GET", "/health", "/health"},
      {"GET", "/ready", "/ready"},
      {"GET", "/metrics", "/metrics"},
      {"GET", "/v2/health/live", "/v2/health/live"},
      {"GET", "/v2/health/ready", "/v2/health/ready"},
      {"GET", "/v2", "/v2"},
      {"GET", "/v2/models/digits", "/v2/models/{model}"},
      {"GET", "/v2/models/digits/versions/2", "/v2/models/{model}/versions/{version}"},
      {"GET", "/v2/models/digits/ready", "/v2/models/{model}/ready"},
      {"GET", "/v2/models/digits/versions/2/ready",
       "/v2/models/{model}/versions/{version}/ready"},
      {"POST", "/v2/models/digits/infer", "/v2/models/{model}/infer"},
      {"POST", "/v2/models/digits/versions/2/infer",
       "/v2/models/{model}/versions/{version}/infer"},
      {"POST", "/v2/repository/index", "/v2/repository/index"},
      {"POST", "/v2/repository/models/digits/load", "/v2/repository/models/{model}/load"},
      {"POST", "/v2/repository/models/digits/unload",
       "/v2/repository/models/{model}/unload"},
      {"GET", "/v1/models/digits", "/v1/models/{model}"},
      {"GET", "/v1/models/digits/versions/2", "/v1/models/{model}/versions/{version}"},
      {"GET", "/v1/models/digits/metadata", "/v1/models/{model}/metadata"},
      {"GET", "/v1/models/digits/versions/2/metadata",
       "/v1/models/{model}/versions/{version}/metadata"},
      {"POST", "/v1/models/digits:predict", "/v1/models/{model}:predict"},
      {"POST", "/v1/models/digits/versions/2:predict",
       "/v1/models/{model}/versions/{version}:predict"},
      // httplib answers HEAD with the GET handlers.
      {"HEAD", "/health", "/health"},
      {"HEAD", "/api/v1/jobs/abc", "/api/v1/jobs/{job_id}"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(route_template(c.method, c.path), c.expected) << c.method << ' ' << c.path;
}

TEST(RouteTemplate, EveryTemplateIsReachable) {
  std::set<std::string> seen;
  for (auto method : {"GET", "POST", "PUT", "DELETE"})
    for (auto path : {"/health",
                      "/ready",
                      "/metrics",
                      "/dashboard",
                      "/api/v1/stats",
                      "/openapi.json",
                      "/api/v1/models",
                      "/api/v1/models/m",
                      "/api/v1/models/m/predict",
                      "/api/v1/models/m/versions/1/predict",
                      "/api/v1/models/m/jobs",
                      "/api/v1/models/m/reload",
                      "/api/v1/models/m/load",
                      "/api/v1/models/m/unload",
                      "/api/v1/models/m/versions/1/unload",
                      "/api/v1/models/m/traffic",
                      "/api/v1/jobs/j",
                      "/v2/health/live",
                      "/v2/health/ready",
                      "/v2",
                      "/v2/models/m",
                      "/v2/models/m/versions/1",
                      "/v2/models/m/ready",
                      "/v2/models/m/versions/1/ready",
                      "/v2/models/m/infer",
                      "/v2/models/m/versions/1/infer",
                      "/v2/repository/index",
                      "/v2/repository/models/m/load",
                      "/v2/repository/models/m/unload",
                      "/v1/models/m",
                      "/v1/models/m/versions/1",
                      "/v1/models/m/metadata",
                      "/v1/models/m/versions/1/metadata",
                      "/v1/models/m:predict",
                      "/v1/models/m/versions/1:predict",
                      "/nope"})
      seen.insert(route_template(method, path));
  EXPECT_EQ(seen.size(), route_templates.size());
  for (auto t : route_templates)
    EXPECT_EQ(seen.count(std::string{t}), 1u) << t;
}

TEST(RouteTemplate, WrongMethodIsUnmatched) {
  // httplib answers these 404 without reaching a handler.
  EXPECT_EQ(route_template("GET", "/api/v1/models/digits/predict"), "unmatched");
  EXPECT_EQ(route_template("POST", "/health"), "unmatched");
  EXPECT_EQ(route_template("DELETE", "/api/v1/models/digits"), "unmatched");
  EXPECT_EQ(route_template("POST", "/api/v1/models/digits/traffic"), "unmatched");
  EXPECT_EQ(route_template("get", "/health"), "unmatched");
  EXPECT_EQ(route_template("POST", "/v1/models/:predict"), "unmatched");
  EXPECT_EQ(route_template("POST", "/v1/models/m:classify"), "unmatched");
  // TF Serving's model and version names hold no ':', as its routes say.
  EXPECT_EQ(route_template("POST", "/v1/models/a:b:predict"), "unmatched");
  EXPECT_EQ(route_template("GET", "/v1/models/m:predict"), "unmatched");
  EXPECT_EQ(route_template("GET", "/v1/models/m/versions/1:x"), "unmatched");
  EXPECT_EQ(route_template("GET", "/v1/models/m:x/metadata"), "unmatched");
  EXPECT_EQ(route_template("GET", "/v2/models/m/infer"), "unmatched");
  EXPECT_EQ(route_template("OPTIONS", "/api/v1/models"), "unmatched");
  EXPECT_EQ(route_template("", "/health"), "unmatched");
}

TEST(RouteTemplate, JunkPathsAreUnmatched) {
  std::string nul_path = "/hea";
  nul_path += '\0';
  nul_path += "lth";
  for (const std::string& path : {std::string{},
                                  std::string{"/"},
                                  std::string{"health"},
                                  std::string{"/health/"},
                                  std::string{"//health"},
                                  std::string{"/health?x=1"},
                                  std::string{"/../etc"},
                                  std::string{"/../etc/passwd"},
                                  std::string{"/api"},
                                  std::string{"/api/v1"},
                                  std::string{"/api/v1/"},
                                  std::string{"/api/v1/models/"},
                                  std::string{"/API/v1/models"},
                                  std::string{"/api/v2/models"},
                                  std::string{"/api/v1/jobs"},
                                  std::string{"/api/v1/jobs/"},
                                  std::string{"/api/v1/models//predict"},
                                  std::string{"/api/v1/models/a/versions//predict"},
                                  std::string{"/api/v1/models/a/b/c/d/e/f/g/h/predict"},
                                  std::string{"/api/v1/models/a/predict/"},
                                  nul_path,
                                  std::string(10'000, '/'),
                                  "/" + std::string(10'000, 'a')}) {
    EXPECT_EQ(route_template("GET", path), "unmatched") << path.substr(0, 60);
    EXPECT_EQ(route_template("POST", path), "unmatched") << path.substr(0, 60);
  }
}

TEST(RouteTemplate, HugeOrOddParametersStillMapToOneTemplate) {
  std::string huge(10'000, 'm');
  EXPECT_EQ(route_template("POST", "/api/v1/models/" + huge + "/predict"), predict);
  EXPECT_EQ(route_template("GET", "/api/v1/models/" + huge), "/api/v1/models/{model}");
  EXPECT_EQ(route_template("GET", "/api/v1/jobs/" + huge), "/api/v1/jobs/{job_id}");
  // As httplib's ([^/]+) does: any non-empty segment is a parameter; the
  // handler then answers model_not_found.
  EXPECT_EQ(route_template("POST", "/api/v1/models/../predict"), predict);
  EXPECT_EQ(route_template("POST", "/api/v1/models/a b%00\"/predict"), predict);
}

// --- metrics ------------------------------------------------------------------

TEST(Metrics, BuildInfoAndAllFamiliesAreDeclared) {
  metrics m;
  auto text = m.render();
  EXPECT_EQ(sample(text, "actorserve_build_info{version=\"" ACTORSERVE_VERSION "\"}"), 1);
  // Series that exist from the start, at zero.
  EXPECT_EQ(sample(text, "actorserve_rejected_requests_total{reason=\"overloaded\"}"), 0);
  EXPECT_EQ(sample(text, "actorserve_job_store_size"), 0);
  EXPECT_EQ(sample(text, "request_latency_seconds_count{endpoint=\"/health\"}"), 0);
  // A family shows once it has a series.
  EXPECT_EQ(text.find("request_count_total"), std::string::npos);
  EXPECT_EQ(text.find("actorserve_inference_seconds"), std::string::npos);

  m.observe_request("GET", "/health", 200, 0.001);
  m.observe_inference("digits", "1", 0.01, 1, 0.001);
  text = m.render();
  for (auto family :
       {"request_count_total counter", "request_latency_seconds histogram",
        "actorserve_inference_seconds histogram", "actorserve_batch_size histogram",
        "actorserve_queue_wait_seconds histogram", "actorserve_queue_depth gauge",
        "actorserve_model_loads_total counter",
        "actorserve_model_load_failures_total counter",
        "actorserve_model_restarts_total counter",
        "actorserve_rejected_requests_total counter", "actorserve_job_store_size gauge",
        "actorserve_open_connections gauge", "actorserve_build_info gauge"})
    EXPECT_NE(text.find(std::string{"# TYPE "} + family + "\n"), std::string::npos)
        << family;
  // Every series of a version exists, at zero, once the version is seen.
  EXPECT_EQ(
      sample(text, "actorserve_model_restarts_total{model=\"digits\",version=\"1\"}"), 0);
  EXPECT_EQ(sample(text, "actorserve_queue_depth{model=\"digits\",version=\"1\"}"), 0);
}

TEST(Metrics, RequestCountAndLatency) {
  metrics m;
  for (int i = 0; i < 3; ++i)
    m.observe_request("POST", predict, 200, 0.003);
  m.observe_request("POST", predict, 404, 0.0002);
  m.observe_request("GET", "/health", 200, 12.0);
  auto text = m.render();

  EXPECT_EQ(sample(text, "request_count_total{endpoint=\"" + predict +
                             "\",http_status=\"200\",method=\"POST\"}"),
            3);
  EXPECT_EQ(sample(text, "request_count_total{endpoint=\"" + predict +
                             "\",http_status=\"404\",method=\"POST\"}"),
            1);
  EXPECT_EQ(
      sample(
          text,
          "request_count_total{endpoint=\"/health\",http_status=\"200\",method=\"GET\"}"),
      1);
  EXPECT_EQ(count_lines(text, "request_count_total{"), 3u);

  auto bucket = [&](const std::string& endpoint, const std::string& le) {
    return sample(text, "request_latency_seconds_bucket{endpoint=\"" + endpoint +
                            "\",le=\"" + le + "\"}");
  };
  EXPECT_EQ(bucket(predict, "0.0005"), 1);
  EXPECT_EQ(bucket(predict, "0.0025"), 1);
  EXPECT_EQ(bucket(predict, "0.005"), 4);
  EXPECT_EQ(bucket(predict, "10"), 4);
  EXPECT_EQ(bucket(predict, "+Inf"), 4);
  EXPECT_EQ(sample(text, "request_latency_seconds_count{endpoint=\"" + predict + "\"}"),
            4);
  EXPECT_NEAR(sample(text, "request_latency_seconds_sum{endpoint=\"" + predict + "\"}"),
              3 * 0.003 + 0.0002, 1e-12);
  EXPECT_EQ(bucket("/health", "10"), 0);
  EXPECT_EQ(bucket("/health", "+Inf"), 1);
  // Bucket bounds are inclusive (le), as Prometheus defines them.
  metrics edge;
  edge.observe_request("GET", "/ready", 200, 0.001);
  EXPECT_EQ(sample(edge.render(),
                   "request_latency_seconds_bucket{endpoint=\"/ready\",le=\"0.001\"}"),
            1);
}

TEST(Metrics, LabelsStayBoundedWhateverTheCallerPasses) {
  metrics m;
  m.observe_request("GET", "/api/v1/models/digits/predict", 200,
                    0.1);                                // raw path by mistake
  m.observe_request("BREW", "/health", 200, 0.1);        // odd method
  m.observe_request("GET", "/health", 42, 0.1);          // odd status
  m.observe_request("GET", "/health", -1, -5);           // negative time
  m.observe_request("GET", "/ready", 200, std::nan("")); // NaN time
  auto text = m.render();
  EXPECT_EQ(sample(text, "request_count_total{endpoint=\"unmatched\",http_status=\"200\","
                         "method=\"GET\"}"),
            1);
  EXPECT_EQ(sample(text, "request_count_total{endpoint=\"/"
                         "health\",http_status=\"200\",method=\"OTHER\"}"),
            1);
  EXPECT_EQ(sample(text, "request_count_total{endpoint=\"/"
                         "health\",http_status=\"other\",method=\"GET\"}"),
            2);
  EXPECT_EQ(sample(text, "request_latency_seconds_sum{endpoint=\"/health\"}"), 0.2);
  EXPECT_EQ(sample(text, "request_latency_seconds_sum{endpoint=\"/ready\"}"), 0);
  EXPECT_EQ(
      sample(text, "request_latency_seconds_bucket{endpoint=\"/ready\",le=\"0.0005\"}"),
      1);
}

TEST(Metrics, ThousandJunkPathsMakeOneSeries) {
  metrics m;
  for (int i = 0; i < 1000; ++i) {
    auto path = "/junk/" + std::to_string(i) + "/../" + std::string(i % 50, 'x');
    m.observe_request("GET", route_template("GET", path), 404, 0.001);
  }
  auto text = m.render();
  EXPECT_EQ(count_lines(text, "request_count_total{"), 1u);
  EXPECT_EQ(sample(text, "request_count_total{endpoint=\"unmatched\",http_status=\"404\","
                         "method=\"GET\"}"),
            1000);
  // One latency histogram per template, fixed at construction.
  EXPECT_EQ(count_lines(text, "request_latency_seconds_count{"), route_templates.size());
  EXPECT_EQ(sample(text, "request_latency_seconds_count{endpoint=\"unmatched\"}"), 1000);

  // Predicts on 1,000 different (unknown) model names: one series as well.
  for (int i = 0; i < 1000; ++i) {
    auto path = "/api/v1/models/model" + std::to_string(i) + "/predict";
    m.observe_request("POST", route_template("POST", path), 404, 0.001);
  }
  text = m.render();
  EXPECT_EQ(count_lines(text, "request_count_total{"), 2u);
}

TEST(Metrics, PerModelAndVersion) {
  metrics m;
  m.count_load("digits", "1", true);
  m.count_load("digits", "2", true);
  m.count_load("digits", "3", false);
  m.count_restart("digits", "2");
  m.set_queue_depth("digits", "2", 17);
  m.set_queue_depth("digits", "2", 5);
  m.observe_inference("digits", "2", 0.004, 8, 0.0015);
  m.observe_inference("digits", "2", 0.2, 100, 0.0001);
  m.count_rejection("overloaded");
  m.count_rejection("rate_limited");
  m.count_rejection("rate_limited");
  m.count_rejection("deadline_exceeded");
  m.count_rejection("something new");
  m.set_job_store_size(12);
  m.set_open_connections(3000);
  auto text = m.render();

  const std::string v1 = "{model=\"digits\",version=\"1\"}";
  const std::string v2 = "{model=\"digits\",version=\"2\"}";
  const std::string v3 = "{model=\"digits\",version=\"3\"}";
  EXPECT_EQ(sample(text, "actorserve_model_loads_total" + v1), 1);
  EXPECT_EQ(sample(text, "actorserve_model_loads_total" + v2), 1);
  EXPECT_EQ(sample(text, "actorserve_model_loads_total" + v3), 0);
  EXPECT_EQ(sample(text, "actorserve_model_load_failures_total" + v3), 1);
  EXPECT_EQ(sample(text, "actorserve_model_load_failures_total" + v1), 0);
  EXPECT_EQ(sample(text, "actorserve_model_restarts_total" + v2), 1);
  EXPECT_EQ(sample(text, "actorserve_queue_depth" + v2), 5);

  auto with_le = [](const std::string& labels, const std::string& le) {
    return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
  };
  EXPECT_EQ(sample(text, "actorserve_inference_seconds_count" + v2), 2);
  EXPECT_NEAR(sample(text, "actorserve_inference_seconds_sum" + v2), 0.204, 1e-12);
  EXPECT_EQ(sample(text, "actorserve_inference_seconds_bucket" + with_le(v2, "0.005")),
            1);
  EXPECT_EQ(sample(text, "actorserve_inference_seconds_bucket" + with_le(v2, "0.25")), 2);
  EXPECT_EQ(sample(text, "actorserve_batch_size_bucket" + with_le(v2, "4")), 0);
  EXPECT_EQ(sample(text, "actorserve_batch_size_bucket" + with_le(v2, "8")), 1);
  EXPECT_EQ(sample(text, "actorserve_batch_size_bucket" + with_le(v2, "64")), 1);
  EXPECT_EQ(sample(text, "actorserve_batch_size_bucket" + with_le(v2, "128")), 2);
  EXPECT_EQ(sample(text, "actorserve_batch_size_bucket" + with_le(v2, "1024")), 2);
  EXPECT_EQ(sample(text, "actorserve_batch_size_sum" + v2), 108);
  EXPECT_EQ(sample(text, "actorserve_queue_wait_seconds_bucket" + with_le(v2, "0.0001")),
            1);
  EXPECT_EQ(sample(text, "actorserve_queue_wait_seconds_bucket" + with_le(v2, "0.001")),
            1);
  EXPECT_EQ(sample(text, "actorserve_queue_wait_seconds_bucket" + with_le(v2, "0.0025")),
            2);
  EXPECT_EQ(sample(text, "actorserve_inference_seconds_count" + v1), 0);

  EXPECT_EQ(sample(text, "actorserve_rejected_requests_total{reason=\"overloaded\"}"), 1);
  EXPECT_EQ(sample(text, "actorserve_rejected_requests_total{reason=\"rate_limited\"}"),
            2);
  EXPECT_EQ(
      sample(text, "actorserve_rejected_requests_total{reason=\"deadline_exceeded\"}"),
      1);
  EXPECT_EQ(sample(text, "actorserve_rejected_requests_total{reason=\"other\"}"), 1);
  EXPECT_EQ(count_lines(text, "actorserve_rejected_requests_total{"), 4u);
  EXPECT_EQ(sample(text, "actorserve_job_store_size"), 12);
  EXPECT_EQ(sample(text, "actorserve_open_connections"), 3000);
}

TEST(Metrics, ObserveRequestDoesNotAllocateOnceTheSeriesExists) {
  metrics m;
  m.observe_request("POST", predict, 200, 0.01);
  allocations = 0;
  counting = true;
  for (int i = 0; i < 1000; ++i)
    m.observe_request("POST", predict, 200, 0.01);
  counting = false;
  EXPECT_EQ(allocations.load(), 0);

  // The counting works: a new series allocates.
  counting = true;
  m.observe_request("POST", predict, 201, 0.01);
  counting = false;
  EXPECT_GT(allocations.load(), 0);
}

TEST(Metrics, ConcurrentObserversAndScrapes) {
  metrics m;
  constexpr int threads = 4;
  constexpr int per_thread = 10'000;
  const std::string endpoints[] = {predict, "/health", "/api/v1/jobs/{job_id}",
                                   "unmatched"};
  const int statuses[] = {200, 404, 503};
  std::atomic<bool> done{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        m.observe_request(t % 2 ? "GET" : "POST", endpoints[i % 4], statuses[i % 3],
                          0.001);
        if (i % 1000 == 0) // new per-model series while others observe and scrape
          m.observe_inference("model" + std::to_string(t), std::to_string(i / 1000), 0.01,
                              4, 0.001);
      }
    });
  std::thread scraper{[&] {
    while (!done)
      EXPECT_FALSE(m.render().empty());
  }};
  for (auto& w : workers)
    w.join();
  done = true;
  scraper.join();

  auto text = m.render();
  double total = 0;
  std::istringstream lines{text};
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind("request_count_total{", 0) == 0)
      total += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  EXPECT_EQ(total, threads * per_thread);
  // 2 methods x 4 endpoints x 3 statuses.
  EXPECT_EQ(count_lines(text, "request_count_total{"), 24u);
  double observed = 0;
  for (const auto& e : endpoints)
    observed += sample(text, "request_latency_seconds_count{endpoint=\"" + e + "\"}");
  EXPECT_EQ(observed, threads * per_thread);
  EXPECT_EQ(count_lines(text, "actorserve_inference_seconds_count{"), threads * 10u);
}

// --- promtool -----------------------------------------------------------------

TEST(Metrics, CancellationsPerModelAndReason) {
  metrics m;
  EXPECT_EQ(m.render().find("actorserve_cancelled_requests_total"), std::string::npos);
  m.count_cancelled("digits", "client_gone");
  m.count_cancelled("digits", "client_gone");
  m.count_cancelled("digits", "a reason nobody planned");
  m.count_cancelled("affine", "client_gone");
  auto text = m.render();
  EXPECT_NE(text.find("# TYPE actorserve_cancelled_requests_total counter\n"),
            std::string::npos);
  const std::string family = "actorserve_cancelled_requests_total";
  EXPECT_EQ(sample(text, family + "{model=\"digits\",reason=\"client_gone\"}"), 2);
  EXPECT_EQ(sample(text, family + "{model=\"digits\",reason=\"other\"}"), 1);
  EXPECT_EQ(sample(text, family + "{model=\"affine\",reason=\"client_gone\"}"), 1);
  // Both reasons of a model exist, at zero, once the model is seen.
  EXPECT_EQ(sample(text, family + "{model=\"affine\",reason=\"other\"}"), 0);
  EXPECT_EQ(count_lines(text, family + "{"), 4u);
}

TEST(Metrics, PredictionsPerModelByStatusClass) {
  metrics m;
  m.observe_model_request("digits", 200, 0.002);
  m.observe_model_request("digits", 204, 0.002);
  m.observe_model_request("digits", 404, 0.001);
  m.observe_model_request("digits", 503, 0.001);
  m.observe_model_request("digits", 302, 0.001);
  m.observe_model_request("digits", -1, -5); // bounded labels, no negative sum
  auto text = m.render();
  const std::string family = "actorserve_model_requests_total";
  EXPECT_EQ(sample(text, family + "{code=\"2xx\",model=\"digits\"}"), 2);
  EXPECT_EQ(sample(text, family + "{code=\"4xx\",model=\"digits\"}"), 1);
  EXPECT_EQ(sample(text, family + "{code=\"5xx\",model=\"digits\"}"), 1);
  EXPECT_EQ(sample(text, family + "{code=\"other\",model=\"digits\"}"), 2);
  EXPECT_EQ(count_lines(text, family + "{"), 4u);
  EXPECT_EQ(sample(text, "actorserve_model_request_seconds_count{model=\"digits\"}"), 6);
  EXPECT_NEAR(sample(text, "actorserve_model_request_seconds_sum{model=\"digits\"}"),
              0.007, 1e-9);
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  if (testing::run_command("command -v promtool").code != 0)
    GTEST_SKIP() << "promtool not found: install the Debian package 'prometheus' "
                    "(apt-get install -y prometheus) to check the exposition format";

  metrics m;
  m.observe_request("POST", predict, 200, 0.003);
  m.observe_request("GET", "/health", 200, 0.0001);
  m.observe_request("PATCH", "unmatched", 404, 0.0001);
  m.observe_request("GET", "/metrics", 42, 0.0001);
  m.count_load("digits", "1", true);
  m.count_load("digits", "2", false);
  m.count_restart("digits", "1");
  m.set_queue_depth("digits", "1", 3);
  m.observe_inference("digits", "1", 0.01, 16, 0.002);
  // Label values that need escaping, and bytes that are not UTF-8.
  m.observe_inference("we\"ird\\name\nwith newline", "1", 0.01, 1, 0.0);
  m.count_load(std::string{"bad\xff\xfe utf8 \xe2\x82"}, "1", true);
  m.count_load("caf\xc3\xa9", "7", true);
  m.count_rejection("overloaded");
  m.count_rejection("rate_limited");
  m.count_rejection("deadline_exceeded");
  m.count_cancelled("digits", "client_gone");
  m.set_job_store_size(2);
  auto text = m.render();
  EXPECT_NE(text.find("model=\"bad?? utf8 ??\""), std::string::npos);
  EXPECT_NE(text.find("model=\"caf\xc3\xa9\""), std::string::npos);

  testing::temp_dir dir;
  auto file = dir.path() / "metrics.txt";
  testing::write_file(file, text);
  auto [status, output] =
      testing::run_command("promtool check metrics < '" + file.string() + "'");
  EXPECT_EQ(status, 0) << "promtool check metrics said:\n" << output << "\non:\n" << text;
  EXPECT_EQ(output, "") << output;
}

} // namespace
} // namespace actorserve
