-- wrk script for bench/serving.
--
--   wrk -t2 -c32 -d20s --latency -s bench/oip.lua http://127.0.0.1:8080/v2/models/minilm/infer -- SENTENCES_FILE
--     POSTs one sentence per request as OIP v2 JSON ({"inputs":[{"name":"text","shape":[1],
--     "datatype":"BYTES","data":["..."]}]}), rotating through the file's lines (one sentence each);
--     every wrk thread starts at another place in the list.
--   wrk -t2 -c32 -d20s --latency -s bench/oip.lua http://127.0.0.1:8080/v2/health/live -- --get
--     plain GETs of the URL (the hello-world reference).
--   wrk -t2 -c16 -d10s --latency -s bench/oip.lua http://127.0.0.1:8080/v2/models/m/infer -- --bodies FILE
--     POSTs each line of FILE as it stands, as JSON (the request bodies of a berth bench --data file),
--     rotating through them like the sentences.
--
-- Either way, when wrk is done it prints one machine-readable line,
--   BERTH_BENCH {"requests":..,"duration_us":..,"errors":{..},"latency_us":{"p50":..,..}}
-- which bench/serving collects (latencies in microseconds, as wrk measures them).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function json_string(s)
  s = s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n'):gsub('\r', '\\r'):gsub('\t', '\\t')
  return '"' .. s .. '"'
end

local requests = {}
local next_index = 1

function init(args)
  local source = args[1]
  if source == nil then
    io.stderr:write("oip.lua: give a sentences file (or --get) after --\n")
    os.exit(2)
  end
  if source == "--get" then
    requests[1] = wrk.format("GET")
    return
  end
  local bodies = source == "--bodies"
  if bodies then
    source = args[2]
    if source == nil then
      io.stderr:write("oip.lua: give a file of request bodies after --bodies\n")
      os.exit(2)
    end
  end
  local file = io.open(source, "r")
  if file == nil then
    io.stderr:write("oip.lua: cannot read " .. source .. "\n")
    os.exit(2)
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in file:lines() do
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then
      local body = line
      if not bodies then
        body = '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":['
          .. json_string(line) .. ']}]}'
      end
      table.insert(requests, wrk.format("POST", nil, headers, body))
    end
  end
  file:close()
  if #requests == 0 then
    io.stderr:write("oip.lua: nothing to send in " .. source .. "\n")
    os.exit(2)
  end
  -- Threads start at different sentences so that they do not send the same one in step.
  next_index = ((id or 0) * 37) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BERTH_BENCH {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,'
      .. '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
