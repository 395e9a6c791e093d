-- wrk script: POST one fixed JSON body (file named by BENCH_BODY) on every
-- request, or GET when BENCH_BODY is empty, and print the run's numbers as
-- one JSON line ("BENCH_JSON {...}").
-- No request()/response() callbacks, so wrk keeps its static fast path.
local path = os.getenv("BENCH_BODY")
if path and path ~= "" then
  local file = assert(io.open(path, "rb"), "cannot open BENCH_BODY " .. path)
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"non2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
