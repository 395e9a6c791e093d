// Raw in-process libtorch throughput of one TorchScript model: no HTTP, no
// actors, no image decoding; the ceiling the server is compared against.
//
//   torch_throughput --model DIR/resnet18/1/model.pt --shape 3,224,224
//                    [--threads 1] [--batches 1,4,8] [--seconds 5]
//                    [--warmup 3] [--json FILE]
//
// Threads are set the way the server sets them (configure_torch_threads in
// actors/model_instance.cpp: intra-op and inter-op both), and forward runs
// under c10::InferenceMode on a plain thread, as in a model instance. The
// inter-op pool can be sized once per process, so each thread setting is
// one run of this program. Prints one line per batch size and, with --json,
// writes the same numbers as a JSON array. "others" is how many cores other
// processes kept busy meanwhile (machine busy time from /proc/stat minus this
// process's CPU time): on a shared 2-core machine, a number to read first.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <torch/script.h>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  std::string model;
  std::vector<int64_t> shape{3, 224, 224};
  std::vector<int64_t> batches{1, 4, 8};
  int threads = 1;
  double seconds = 5.0;
  int warmup = 3;
  std::string json;
};

struct result {
  int64_t batch = 0;
  int64_t calls = 0;
  double seconds = 0;
  double images_per_s = 0;
  double ms_per_call_median = 0;
  double other_cores = 0;
};

/// CPU seconds all cores have been busy since boot (/proc/stat).
double machine_busy_seconds() {
  std::ifstream in{"/proc/stat"};
  std::string cpu;
  long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
            steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return static_cast<double>(user + nice + system + irq + softirq + steal) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// CPU seconds this process has used.
double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::vector<int64_t> parse_list(const std::string& text, const char* what) {
  std::vector<int64_t> values;
  std::stringstream in{text};
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    auto value = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < 1)
      throw std::invalid_argument(std::string{"bad "} + what + ": " + text);
    values.push_back(value);
  }
  if (values.empty())
    throw std::invalid_argument(std::string{"empty "} + what);
  return values;
}

[[noreturn]] void usage(int code) {
  std::cerr << "usage: torch_throughput --model FILE.pt [--shape C,H,W] [--threads N]\n"
               "                        [--batches 1,4,8] [--seconds S] [--warmup N]"
               " [--json FILE]\n";
  std::exit(code);
}

options parse(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(2);
      return argv[++i];
    };
    if (arg == "--model")
      opts.model = value();
    else if (arg == "--shape")
      opts.shape = parse_list(value(), "--shape");
    else if (arg == "--batches")
      opts.batches = parse_list(value(), "--batches");
    else if (arg == "--threads")
      opts.threads = std::stoi(value());
    else if (arg == "--seconds")
      opts.seconds = std::stod(value());
    else if (arg == "--warmup")
      opts.warmup = std::stoi(value());
    else if (arg == "--json")
      opts.json = value();
    else if (arg == "-h" || arg == "--help")
      usage(0);
    else
      usage(2);
  }
  if (opts.model.empty() || opts.threads < 1 || opts.seconds <= 0 || opts.warmup < 0)
    usage(2);
  return opts;
}

result measure(torch::jit::Module& module, const options& opts, int64_t batch) {
  std::vector<int64_t> sizes{batch};
  sizes.insert(sizes.end(), opts.shape.begin(), opts.shape.end());
  // Fixed pseudo-random input (values do not change the cost of a CNN).
  torch::manual_seed(7);
  auto input = torch::rand(sizes, torch::kFloat32);
  c10::InferenceMode inference;
  for (int i = 0; i < opts.warmup; ++i)
    module.forward({input}).toTensor();
  std::vector<double> call_ms;
  auto busy_before = machine_busy_seconds();
  auto own_before = own_cpu_seconds();
  auto started = clock_type::now();
  auto until = started + std::chrono::duration<double>(opts.seconds);
  auto now = started;
  do {
    auto before = clock_type::now();
    // Copy the output out as the model instance does.
    auto out = module.forward({input}).toTensor().to(torch::kFloat32).contiguous();
    std::vector<float> values(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    now = clock_type::now();
    call_ms.push_back(std::chrono::duration<double, std::milli>(now - before).count());
  } while (now < until);
  auto others = (machine_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before);
  result r;
  r.batch = batch;
  r.calls = static_cast<int64_t>(call_ms.size());
  r.seconds = std::chrono::duration<double>(now - started).count();
  r.images_per_s = static_cast<double>(r.calls * batch) / r.seconds;
  std::nth_element(call_ms.begin(), call_ms.begin() + call_ms.size() / 2, call_ms.end());
  r.ms_per_call_median = call_ms[call_ms.size() / 2];
  r.other_cores = std::max(0.0, others / r.seconds);
  return r;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto opts = parse(argc, argv);
    // As actorserve's configure_torch_threads().
    at::set_num_threads(opts.threads);
    at::set_num_interop_threads(opts.threads);
    auto module = torch::jit::load(opts.model, torch::kCPU);
    module.eval();

    std::vector<result> results;
    std::printf("%-8s %-6s %10s %8s %14s %12s %8s\n", "threads", "batch", "calls", "secs",
                "images/s", "ms/call p50", "others");
    for (auto batch : opts.batches) {
      auto r = measure(module, opts, batch);
      results.push_back(r);
      std::printf("%-8d %-6lld %10lld %8.2f %14.1f %12.2f %8.2f\n", opts.threads,
                  static_cast<long long>(r.batch), static_cast<long long>(r.calls),
                  r.seconds, r.images_per_s, r.ms_per_call_median, r.other_cores);
      std::fflush(stdout);
    }
    if (!opts.json.empty()) {
      std::ofstream out{opts.json};
      out << "[";
      for (size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        out << (i ? ",\n " : "") << "{\"threads\": " << opts.threads
            << ", \"batch\": " << r.batch << ", \"calls\": " << r.calls
            << ", \"seconds\": " << r.seconds << ", \"images_per_s\": " << r.images_per_s
            << ", \"ms_per_call_p50\": " << r.ms_per_call_median
            << ", \"other_cores\": " << r.other_cores << "}";
      }
      out << "]\n";
      if (!out)
        throw std::runtime_error("cannot write " + opts.json);
    }
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "torch_throughput: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "torch_throughput: " << e.what() << "\n";
  }
  return 1;
}
