-- POST /api/intelligence/analyze for a random generated customer each time (ids drawn
-- from a million, so persona caches see mostly new customers).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "qpk_test_sandbox"

local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

init = function(args)
  math.randomseed(seed * 7919)
end

request = function()
  local body = string.format('{"customer_id":"bench_%d","context":{}}', math.random(1, 1000000))
  return wrk.format(nil, nil, nil, body)
end
