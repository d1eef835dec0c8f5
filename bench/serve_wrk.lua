-- wrk script for bench/serve.py: POST prepared JSON bodies, one per line of a file, in turn.
--   wrk -t1 -cN -dS --latency -s bench/serve_wrk.lua URL -- BODIES_FILE PATH
-- The connections of a thread take the bodies in turn, so concurrent requests carry different rows.
-- `done` prints one line "WRKJSON {...}" (latencies in microseconds) for serve.py to parse.

local requests = {}
local next_index = 1

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(args[1]) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("POST", args[2], headers, line)
    end
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
