-- POST /api/data/ingest_orders, batches of 10 orders with ids unique across threads and
-- runs (the run tag comes from bench/run.py: wrk ... -- <tag>), for 1,000 customers.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "qpk_test_sandbox"

local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
end

local tag = "run"
local sent = 0
init = function(args)
  tag = args[1] or "run"
end

request = function()
  local orders = {}
  for i = 1, 10 do
    sent = sent + 1
    orders[i] = string.format(
      '{"customer_id":"bench_cust_%d","order_id":"%s_%d_%d","order_date":' ..
      '"2024-01-14T16:05:00Z","total_price":49.9,"items":[{"product_id":"prod_fq_001",' ..
      '"product_name":"Fat Quarter Bundle","category":"fabric","quantity":2,"price":24.95}]}',
      sent % 1000, tag, thread_no, sent)
  end
  local body = '{"source":"shopify","orders":[' .. table.concat(orders, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end
