-- The benchmark's workload for wrk: a merchant backend's mix of Vipps calls.
--
-- Every request carries the headers a real integration sends (Bearer token, subscription key,
-- Merchant-Serial-Number, an Idempotency-Key unique across runs, the Vipps-System-* headers)
-- and its own reference, made from the run tag and a counter, so no two requests share one;
-- phone numbers differ per request too. In every 20 requests:
--   6 ePayment create with a receipt, 5 GET payment, 3 capture, 2 refund, 2 eCom initiate,
--   and 2 that the default policies are meant to block (10 %): an amount of 49900.0000001,
--   then alternately an eCom phone number "abc" and a 7-character ePayment reference.
--
-- Settings come from the environment, since wrk decides whether `delay` exists before it
-- calls init():
--   BENCH_RATE          requests per second for the thread; 0 or unset: as fast as possible
--   BENCH_MAX_REQUESTS  stop the thread after this many responses; 0 or unset: no limit
--   BENCH_TAG           a run tag put into every reference and idempotency key
-- done() prints one line `BENCH_RESULT {json}` with counts and latency percentiles (µs).

local rate = tonumber(os.getenv("BENCH_RATE") or "0") or 0
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0") or 0
local tag = os.getenv("BENCH_TAG") or "run"

-- Globals, not locals: setup() sets `thread_id` in each thread, and done() reads `statuses`.
thread_id = 0
statuses = {}
local threads = {}
local counter = 0
local responses = 0
local stopped = false

function setup(thread)
   thread:set("thread_id", #threads + 1)
   table.insert(threads, thread)
end

local function random_token(length, alphabet)
   local out = {}
   for i = 1, length do
      local at = math.random(1, #alphabet)
      out[i] = alphabet:sub(at, at)
   end
   return table.concat(out)
end

-- A 31-bit number from the run tag: idempotency keys differ between runs (phases) against
-- the same proxy process, which remembers keys and answers 409 to one reused for another body.
local function run_id(text)
   local h = 5381
   for i = 1, #text do h = (h * 33 + text:byte(i)) % 2147483647 end
   return h
end
local run = run_id(tag .. os.time())

local b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local hex = "0123456789abcdef"
local common

function init(args)
   math.randomseed(thread_id * 7919 + 17)
   -- A Vipps access token is a JWT of about 1,200 characters.
   local token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6IkhTMjU2In0."
      .. random_token(900, b64url) .. "." .. random_token(342, b64url)
   common = {
      ["Authorization"] = "Bearer " .. token,
      ["Ocp-Apim-Subscription-Key"] = random_token(32, hex),
      ["Merchant-Serial-Number"] = "123456",
      ["Vipps-System-Name"] = "acme-webshop",
      ["Vipps-System-Version"] = "3.1.2",
      ["Vipps-System-Plugin-Name"] = "acme-vipps-plugin",
      ["Vipps-System-Plugin-Version"] = "4.5.6",
      ["Accept"] = "application/json",
   }
end

local function headers_with(extra)
   local h = {}
   for k, v in pairs(common) do h[k] = v end
   for k, v in pairs(extra) do h[k] = v end
   return h
end

-- UUID-shaped, unique per request: the run, then random digits, then thread and counter.
local function idempotency_key()
   return string.format("%08x-%04x-4%03x-a%03x-%04x%08x",
      run, math.random(0, 0xffff), math.random(0, 0xfff), math.random(0, 0xfff),
      thread_id, counter)
end

local function write_headers()
   return headers_with({
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = idempotency_key(),
   })
end

-- Seven digits that change with every request: each customer has their own phone number, so
-- no cache of parsed numbers sees the same one twice in a run (9xxxxxxx is a Norwegian mobile).
local function subscriber()
   return string.format("%07d", (counter * 7919) % 10000000)
end

local receipt = '"receipt":{"orderLines":['
   .. '{"name":"Wool socks","id":"sku-1001","totalAmount":39900,"totalAmountExcludingTax":31920,'
   .. '"totalTaxAmount":7980,"taxRate":2500,"unitInfo":{"unitPrice":19950,"quantity":"2",'
   .. '"quantityUnit":"PCS"},"discount":0,"productUrl":"https://shop.example.com/p/sku-1001",'
   .. '"isShipping":false},'
   .. '{"name":"Shipping","id":"shipping","totalAmount":10000,"totalAmountExcludingTax":8000,'
   .. '"totalTaxAmount":2000,"taxRate":2500,"isShipping":true}],'
   .. '"bottomLine":{"currency":"NOK","posId":"web-1","receiptNumber":"0527013501"}}'

local function create_payment(reference, amount)
   local body = '{"amount":{"currency":"NOK","value":' .. amount .. '},'
      .. '"paymentMethod":{"type":"WALLET"},"customer":{"phoneNumber":"479' .. subscriber() .. '"},'
      .. '"reference":"' .. reference .. '",'
      .. '"returnUrl":"https://shop.example.com/vipps/return?reference=' .. reference .. '",'
      .. '"userFlow":"WEB_REDIRECT","paymentDescription":"Two pairs of wool socks",'
      .. receipt .. '}'
   return wrk.format("POST", "/epayment/v1/payments", write_headers(), body)
end

local function get_payment(reference)
   return wrk.format("GET", "/epayment/v1/payments/" .. reference, headers_with({}))
end

local function modify_payment(reference, action)
   local body = '{"modificationAmount":{"currency":"NOK","value":49900}}'
   return wrk.format("POST", "/epayment/v1/payments/" .. reference .. "/" .. action,
      write_headers(), body)
end

local function initiate_ecom(order_id, phone)
   local body = '{"customerInfo":{"mobileNumber":"' .. phone .. '"},'
      .. '"merchantInfo":{"merchantSerialNumber":"123456",'
      .. '"callbackPrefix":"https://shop.example.com/vipps/callbacks",'
      .. '"fallBack":"https://shop.example.com/vipps/fallback/' .. order_id .. '",'
      .. '"paymentType":"eComm Regular Payment"},'
      .. '"transaction":{"orderId":"' .. order_id .. '","amount":49900,'
      .. '"transactionText":"Two pairs of wool socks","skipLandingPage":false}}'
   local h = headers_with({ ["Content-Type"] = "application/json" })
   return wrk.format("POST", "/ecomm/v2/payments", h, body)
end

-- The 20-slot cycle described at the top.
local slots = {
   "create", "get", "create", "capture", "get", "create", "refund", "ecom", "get", "create",
   "capture", "blocked_amount", "create", "get", "refund", "ecom", "create", "capture", "get",
   "blocked_other",
}

function request()
   counter = counter + 1
   local reference = string.format("bench-%s-%d-%09d", tag, thread_id, counter)
   local kind = slots[(counter - 1) % #slots + 1]
   if kind == "create" then
      return create_payment(reference, "49900")
   elseif kind == "get" then
      return get_payment(reference)
   elseif kind == "capture" then
      return modify_payment(reference, "capture")
   elseif kind == "refund" then
      return modify_payment(reference, "refund")
   elseif kind == "ecom" then
      return initiate_ecom(reference, "9" .. subscriber())
   elseif kind == "blocked_amount" then
      return create_payment(reference, "49900.0000001")
   elseif counter % 40 == 0 then
      return initiate_ecom(reference, "abc")
   else
      return create_payment(string.format("r%06d", counter % 1000000), "49900")
   end
end

function response(status, headers, body)
   responses = responses + 1
   statuses[status] = (statuses[status] or 0) + 1
   if max_requests > 0 and responses >= max_requests and not stopped then
      stopped = true
      io.stderr:write("BENCH_LIMIT_REACHED\n")
      io.stderr:flush()
      wrk.thread:stop()
   end
end

if rate > 0 then
   -- Pace the thread on a fixed schedule (wrk2 is not in Debian): every call claims the next
   -- slot of the schedule and waits until it comes; wrk starts its latency clock only when the
   -- request is written, so the wait is not counted as latency.
   local ffi = require("ffi")
   ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clock_id, bench_timespec *tp);
   ]]
   local now = ffi.new("bench_timespec")
   local function now_ms()
      ffi.C.clock_gettime(1, now) -- CLOCK_MONOTONIC
      return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
   end
   local interval = 1000 / rate
   local next_at = nil

   function delay()
      local t = now_ms()
      if next_at == nil then next_at = t end
      next_at = next_at + interval
      local wait = next_at - t
      if wait < 0 then return 0 end
      return math.floor(wait)
   end
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(counts) do
      table.insert(parts, string.format('"%d":%d', status, count))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"statuses":{%s},"latency_us":{"min":%d,"mean":%.1f,"max":%d,'
      .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, ","), latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)))
end
