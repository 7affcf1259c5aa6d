-- wrk script: durable earn requests against Treue, as tills send them.
--
--   wrk -t2 -c16 -d10s -s benchmarks/earn.lua http://127.0.0.1:PORT -- MEMBERS_FILE API_KEY RUN_TAG
--
-- Every request is POST /api/v1/purchases for a random one of the members listed in MEMBERS_FILE (one
-- member id a line), with 3 lines, a total equal to the lines' sum, an order id unique across runs
-- (RUN_TAG, wrk thread, counter) and an Idempotency-Key. done() prints one line "WRK_JSON {...}".

local threads = {}
local members = {}
local counter = 0
local auth, tag
local categories = { "sofas", "tables", "lamps", "beds", "rugs", "chairs" }

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_id", #threads)
end

function init(args)
   local path = args[1]
   auth = "Bearer " .. args[2]
   tag = args[3] or "wrk"
   for line in io.lines(path) do
      if #line > 0 then
         members[#members + 1] = line
      end
   end
   if #members == 0 then
      error("no member ids in " .. path)
   end
   math.randomseed(os.time() + 7919 * thread_id)
end

local function price(minor)
   return string.format("%d.%02d", math.floor(minor / 100), minor % 100)
end

function request()
   counter = counter + 1
   local order = string.format("%s-t%d-%d", tag, thread_id, counter)
   local lines = {}
   local total = 0
   for i = 1, 3 do
      local quantity = math.random(1, 3)
      local unit = math.random(199, 24999)
      total = total + quantity * unit
      lines[i] = string.format('{"sku":"SKU-%05d","quantity":%d,"unit_price":"%s","category":"%s"}',
         math.random(1, 20000), quantity, price(unit), categories[math.random(#categories)])
   end
   local body = string.format(
      '{"member_id":"%s","external_order_id":"%s","occurred_at":"2026-11-23T10:00:00Z","total":"%s",' ..
      '"currency":"EUR","store":"S%03d","lines":[%s]}',
      members[math.random(#members)], order, price(total), math.random(1, 40), table.concat(lines, ","))
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = auth,
      ["Idempotency-Key"] = order,
   }
   return wrk.format("POST", "/api/v1/purchases", headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.max, latency:percentile(50), latency:percentile(75),
      latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
