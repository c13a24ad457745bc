-- wrk script for the benchmarks: one fixed JSON-RPC POST per request, with MCP session headers.
--
-- Environment (set by bench/run.py):
--   BENCH_BODY_FILE     the request body (a JSON-RPC message)
--   BENCH_HEADERS_FILE  request headers, one "Name: value" per line
--   BENCH_CHECK=1       also count answers whose body holds a JSON-RPC error (small bodies only:
--                       it makes wrk hand every body to Lua)
-- At the end it prints one line: BENCHJSON {...} with requests, duration, latency percentiles (us)
-- and error counts, which bench/run.py parses.

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

wrk.method = "POST"
wrk.body = slurp(os.getenv("BENCH_BODY_FILE"))
for line in slurp(os.getenv("BENCH_HEADERS_FILE")):gmatch("[^\r\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  rpc_errors = 0
end

if os.getenv("BENCH_CHECK") == "1" then
  function response(status, headers, body)
    if status ~= 200 or string.find(body, '"error":', 1, true) then
      rpc_errors = rpc_errors + 1
    end
  end
end

function done(summary, latency, requests)
  local rpc = 0
  for _, thread in ipairs(threads) do
    rpc = rpc + (thread:get("rpc_errors") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,' ..
    '"max":%d,"mean":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"rpc_errors":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout, rpc))
end
