-- wrk script: POST one fixed JSON body (file named by BENCH_BODY) on every
-- request, or GET when BENCH_BODY is empty, and print the run's numbers as
-- one JSON line ("BENCH_JSON {...}").
-- BENCH_HEADERS, when set: extra "Name: value" lines (newline-separated),
-- sent on every request after the defaults (so they may replace them), e.g.
-- the binary tensor extension's Inference-Header-Content-Length and
-- Content-Type: application/octet-stream.
-- No request()/response() callbacks, so wrk keeps its static fast path.
local path = os.getenv("BENCH_BODY")
if path and path ~= "" then
  local file = assert(io.open(path, "rb"), "cannot open BENCH_BODY " .. path)
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\r\n]+") do
  local name, value = line:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
  assert(name, "BENCH_HEADERS: not a 'Name: value' line: " .. line)
  wrk.headers[name] = value
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
