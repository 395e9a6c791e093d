// A closed-loop load client for actorserve's gRPC door (issue 14's protocol
// rows, driven by bench/protocol_rows.sh): ModelInfer calls of one fixed
// request, CONCURRENCY of them outstanding at all times, spread over CHANNELS
// HTTP/2 connections, for SECONDS.
//
//   grpc_load --address HOST:PORT --model M --input-name N --datatype D
//             --shape 1,2,2 --raw FILE [--seconds 10] [--concurrency 32]
//             [--channels 4] [--threads 1] [--deadline-ms 10000] [--check]
//
// FILE holds the input's raw_input_contents (little-endian elements; a BYTES
// element is a 4-byte little-endian length and its bytes). --check makes one
// call and prints its outputs (exit 1 unless it is OK). Otherwise prints one
// line in the shape of bench/post.lua's, so that `bench_tool.py http-row`
// takes it: BENCH_JSON {"requests", "duration_us", "bytes", "p50_us", ...,
// "non2xx": non-OK calls, ...}. Like wrk, only calls answered before the end
// count; the ones still outstanding then are awaited and discarded.
//
// Threading: THREADS threads, each with its own completion queue and its
// share of the calls; a thread starts the next call from the completion of
// the previous one (asynchronous API, no thread waits per call), so the
// client stays cheap beside the server on a 2-core box. Channels are shared
// (gRPC stubs are thread-safe); each has its own TCP connection.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "grpc/inference.grpc.pb.h"

namespace {

using clock_type = std::chrono::steady_clock;
using service = inference::GRPCInferenceService;

struct load_options {
  std::string address;
  std::string model;
  std::string input_name = "input";
  std::string datatype = "FP32";
  std::vector<int64_t> shape;
  std::string raw_file;
  int seconds = 10;
  int concurrency = 32;
  int channels = 4;
  int threads = 1;
  int deadline_ms = 10000;
  bool check = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "grpc_load: %s\nusage: grpc_load --address HOST:PORT --model M "
               "--input-name N --datatype D --shape 1,2,2 --raw FILE [--seconds 10] "
               "[--concurrency 32] [--channels 4] [--threads 1] [--deadline-ms 10000] "
               "[--check]\n",
               why.c_str());
  std::exit(2);
}

int positive_int(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || value <= 0 || value > 1000000)
    usage(flag + " needs a positive number, got '" + text + "'");
  return static_cast<int>(value);
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream in{text};
  for (std::string part; std::getline(in, part, ',');)
    shape.push_back(positive_int("--shape", part));
  if (shape.empty())
    usage("--shape needs at least one dimension");
  return shape;
}

load_options parse(int argc, char** argv) {
  load_options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--check") {
      o.check = true;
      continue;
    }
    if (i + 1 >= argc)
      usage(flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--address")
      o.address = value;
    else if (flag == "--model")
      o.model = value;
    else if (flag == "--input-name")
      o.input_name = value;
    else if (flag == "--datatype")
      o.datatype = value;
    else if (flag == "--shape")
      o.shape = parse_shape(value);
    else if (flag == "--raw")
      o.raw_file = value;
    else if (flag == "--seconds")
      o.seconds = positive_int(flag, value);
    else if (flag == "--concurrency")
      o.concurrency = positive_int(flag, value);
    else if (flag == "--channels")
      o.channels = positive_int(flag, value);
    else if (flag == "--threads")
      o.threads = positive_int(flag, value);
    else if (flag == "--deadline-ms")
      o.deadline_ms = positive_int(flag, value);
    else
      usage("unknown argument " + flag);
  }
  if (o.address.empty() || o.model.empty() || o.raw_file.empty() || o.shape.empty())
    usage("--address, --model, --shape and --raw are required");
  o.threads = std::min(o.threads, o.concurrency);
  return o;
}

inference::ModelInferRequest make_request(const load_options& o) {
  std::ifstream in{o.raw_file, std::ios::binary};
  if (!in)
    usage("cannot read " + o.raw_file);
  inference::ModelInferRequest request;
  request.set_model_name(o.model);
  auto* input = request.add_inputs();
  input->set_name(o.input_name);
  input->set_datatype(o.datatype);
  for (auto dim : o.shape)
    input->add_shape(dim);
  request.add_raw_input_contents(
      std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}});
  return request;
}

std::vector<std::unique_ptr<service::Stub>> make_stubs(const load_options& o) {
  std::vector<std::unique_ptr<service::Stub>> stubs;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    // Without these, channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("actorserve.bench.channel", i);
    args.SetMaxReceiveMessageSize(-1);
    stubs.push_back(service::NewStub(
        grpc::CreateCustomChannel(o.address, grpc::InsecureChannelCredentials(), args)));
  }
  return stubs;
}

/// gRPC takes deadlines on the system clock only.
std::chrono::system_clock::time_point deadline_after(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds{ms};
}

/// One call in flight: owned by the thread that started it, deleted when its
/// completion has been read from that thread's queue.
struct call {
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
  clock_type::time_point started;
};

/// What one thread saw; merged at the end.
struct tally {
  std::vector<uint32_t> latencies_us;
  uint64_t bytes = 0;
  uint64_t not_ok = 0;
  std::map<int, uint64_t> codes; // non-OK status code -> calls
  std::string first_error;
};

class load_thread {
public:
  load_thread(const load_options& o, const inference::ModelInferRequest& request,
              const std::vector<std::unique_ptr<service::Stub>>& stubs)
      : options_{o}, request_{request}, stubs_{stubs} {}

  /// Keeps `calls` calls outstanding until `end`, then waits for the last.
  tally run(int calls, clock_type::time_point end) {
    for (int i = 0; i < calls; ++i)
      start();
    int outstanding = calls;
    void* tag = nullptr;
    bool ok = false;
    while (outstanding > 0 && queue_.Next(&tag, &ok)) {
      std::unique_ptr<call> done{static_cast<call*>(tag)};
      auto now = clock_type::now();
      if (now >= end) {
        --outstanding;
        continue;
      }
      record(*done, now);
      start();
    }
    queue_.Shutdown();
    while (queue_.Next(&tag, &ok)) {
    }
    return std::move(tally_);
  }

private:
  void start() {
    auto* c = new call;
    c->started = clock_type::now();
    c->context.set_deadline(deadline_after(options_.deadline_ms));
    auto& stub = *stubs_[next_channel_++ % stubs_.size()];
    c->reader = stub.PrepareAsyncModelInfer(&c->context, request_, &queue_);
    c->reader->StartCall();
    c->reader->Finish(&c->response, &c->status, c);
  }

  void record(const call& c, clock_type::time_point now) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - c.started);
    tally_.latencies_us.push_back(static_cast<uint32_t>(us.count()));
    if (c.status.ok()) {
      tally_.bytes += c.response.ByteSizeLong();
      return;
    }
    ++tally_.not_ok;
    ++tally_.codes[c.status.error_code()];
    if (tally_.first_error.empty())
      tally_.first_error = c.status.error_message();
  }

  const load_options& options_;
  const inference::ModelInferRequest& request_;
  const std::vector<std::unique_ptr<service::Stub>>& stubs_;
  grpc::CompletionQueue queue_;
  size_t next_channel_ = 0;
  tally tally_;
};

uint32_t percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  auto index = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(index, sorted.size() - 1)];
}

void print_result(tally all, std::chrono::microseconds duration) {
  auto& l = all.latencies_us;
  std::sort(l.begin(), l.end());
  double sum = 0;
  for (auto us : l)
    sum += us;
  std::string codes;
  for (auto [code, n] : all.codes)
    codes += (codes.empty() ? "" : ", ") + ("\"" + std::to_string(code) + "\": ") +
             std::to_string(n);
  std::printf("BENCH_JSON {\"requests\": %zu, \"duration_us\": %lld, \"bytes\": %llu, "
              "\"p50_us\": %u, \"p90_us\": %u, \"p99_us\": %u, \"max_us\": %u, "
              "\"mean_us\": %.1f, \"non2xx\": %llu, \"connect_errors\": 0, "
              "\"read_errors\": 0, \"write_errors\": 0, \"timeouts\": %llu, "
              "\"grpc_codes\": {%s}}\n",
              l.size(), static_cast<long long>(duration.count()),
              static_cast<unsigned long long>(all.bytes), percentile(l, 0.50),
              percentile(l, 0.90), percentile(l, 0.99), l.empty() ? 0 : l.back(),
              l.empty() ? 0.0 : sum / static_cast<double>(l.size()),
              static_cast<unsigned long long>(all.not_ok),
              static_cast<unsigned long long>(
                  all.codes[static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED)]),
              codes.c_str());
  if (!all.first_error.empty())
    std::fprintf(stderr, "grpc_load: first error: %s\n", all.first_error.c_str());
}

int run_load(const load_options& o, const inference::ModelInferRequest& request) {
  auto stubs = make_stubs(o);
  std::vector<std::unique_ptr<load_thread>> workers;
  for (int t = 0; t < o.threads; ++t)
    workers.push_back(std::make_unique<load_thread>(o, request, stubs));
  std::vector<tally> tallies(workers.size());
  auto begin = clock_type::now();
  auto end = begin + std::chrono::seconds{o.seconds};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    int calls = o.concurrency / o.threads + (t < o.concurrency % o.threads ? 1 : 0);
    threads.emplace_back([&, t, calls] { tallies[t] = workers[t]->run(calls, end); });
  }
  for (auto& thread : threads)
    thread.join();
  tally all;
  for (auto& t : tallies) {
    all.latencies_us.insert(all.latencies_us.end(), t.latencies_us.begin(),
                            t.latencies_us.end());
    all.bytes += t.bytes;
    all.not_ok += t.not_ok;
    for (auto [code, n] : t.codes)
      all.codes[code] += n;
    if (all.first_error.empty())
      all.first_error = t.first_error;
  }
  print_result(std::move(all),
               std::chrono::duration_cast<std::chrono::microseconds>(end - begin));
  return 0;
}

/// One call; prints each output's datatype, shape and first values.
int run_check(const load_options& o, const inference::ModelInferRequest& request) {
  auto stub = std::move(make_stubs(o).front());
  grpc::ClientContext context;
  context.set_deadline(deadline_after(o.deadline_ms));
  inference::ModelInferResponse response;
  auto status = stub->ModelInfer(&context, request, &response);
  if (!status.ok()) {
    std::printf("grpc status %d: %s\n", status.error_code(),
                status.error_message().c_str());
    return 1;
  }
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& output = response.outputs(i);
    std::string shape;
    for (auto dim : output.shape())
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    std::printf("OK %s %s [%s]", output.name().c_str(), output.datatype().c_str(),
                shape.c_str());
    if (output.datatype() == "FP32" && i < response.raw_output_contents_size()) {
      const auto& raw = response.raw_output_contents(i);
      std::vector<float> values(raw.size() / sizeof(float));
      std::copy_n(raw.data(), values.size() * sizeof(float),
                  reinterpret_cast<char*>(values.data()));
      auto top = std::max_element(values.begin(), values.end());
      std::printf(" argmax %td:", top - values.begin());
      for (size_t k = 0; k < std::min<size_t>(values.size(), 4); ++k)
        std::printf(" %g", static_cast<double>(values[k]));
    }
    std::printf("\n");
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  auto options = parse(argc, argv);
  auto request = make_request(options);
  return options.check ? run_check(options, request) : run_load(options, request);
}
