"""The Lua scripts of the Redis store (sandbox.store.redis): each runs atomically in Redis.

Every write that changes what a request reads also sets a fresh token (a random string,
never reused): the tenant's revision (``t:<tenant>:rev``) for ingested data, the rule
list's version (``rules_version``) for fault rules. A process that saw a token knows
nothing it read under it has changed while the token is still the same, so it can keep
what it read (the rule list, encoded answers) and ask only for the tokens: one round
trip per request, see ``ADMIT``.
"""

from __future__ import annotations

# KEYS: orders hash, order sequence, customers set, tenants set, the tenant's revision.
# ARGV: customer order list prefix, tenant, revision token, then (id, customer, doc)s.
ADD_ORDERS = """
local fresh = {}
for i = 4, #ARGV, 3 do
  local id, cid, doc = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', KEYS[1], id, doc) == 1 then
    redis.call('RPUSH', KEYS[2], id)
    redis.call('RPUSH', ARGV[1] .. cid, id)
    redis.call('SADD', KEYS[3], cid)
    table.insert(fresh, id)
  end
end
if #fresh > 0 then
  redis.call('SADD', KEYS[4], ARGV[2])
  redis.call('SET', KEYS[5], ARGV[3])
end
return fresh
"""

# KEYS: interactions list, customers set, tenants set, the tenant's revision.
# ARGV: customer interaction list prefix, tenant, revision token, then (customer, doc)s.
ADD_INTERACTIONS = """
for i = 4, #ARGV, 2 do
  local cid, doc = ARGV[i], ARGV[i + 1]
  redis.call('RPUSH', KEYS[1], doc)
  redis.call('RPUSH', ARGV[1] .. cid, doc)
  redis.call('SADD', KEYS[2], cid)
end
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SET', KEYS[4], ARGV[3])
return (#ARGV - 3) / 2
"""

# KEYS: customers set, the customer's order ids, orders hash, the customer's interactions.
# One customer's ingested data in one round trip (HGET in a loop: unpack() of a long id
# list would overflow Lua's stack).
CUSTOMER = """
local known = redis.call('SISMEMBER', KEYS[1], ARGV[1])
local orders = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local doc = redis.call('HGET', KEYS[3], id)
  if doc then table.insert(orders, doc) end
end
return {known, orders, redis.call('LRANGE', KEYS[4], 0, -1)}
"""

INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# A request's bookkeeping before its answer. KEYS: ARGV[1] counters, then values to read.
# ARGV: how many counters, then each counter's by and ttl ms ('' none). Returns the
# counters' new values and the values read ('' for absent).
ADMIT = """
local n = tonumber(ARGV[1])
local values = {}
for i = 1, n do
  values[i] = redis.call('INCRBY', KEYS[i], ARGV[2 * i])
  local ttl = ARGV[2 * i + 1]
  if ttl ~= '' and redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
local read = {}
for i = n + 1, #KEYS do
  read[i - n] = redis.call('GET', KEYS[i]) or ''
end
return {values, read}
"""

# KEYS: the list, then the counters; ARGV: item ('' deletes), keep, ttl ms, the scope's
# marker ('' none: kept at least as long as any list written with it), then each by.
EXCHANGE = """
local values = {}
for i = 2, #KEYS do
  values[i - 1] = redis.call('INCRBY', KEYS[i], ARGV[i + 3])
end
local old = redis.call('LRANGE', KEYS[1], 0, -1)
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  local tag = 0
  if #KEYS > 1 then tag = values[#KEYS - 1] end
  redis.call('RPUSH', KEYS[1], tag .. ' ' .. ARGV[1])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if ARGV[4] ~= '' and redis.call('PTTL', ARGV[4]) < tonumber(ARGV[3]) then
    redis.call('SET', ARGV[4], '1', 'PX', ARGV[3])
  end
end
return {values, old}
"""

# Rule scripts. KEYS: rule ids list, rules hash, rules version; the last ARGV a token.
ADD_RULE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
return 1
"""

REMOVE_RULE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
local removed = redis.call('HDEL', KEYS[2], ARGV[1])
if removed > 0 then redis.call('SET', KEYS[3], ARGV[2]) end
return removed
"""

CLEAR_RULES = """
local count = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
return count
"""

# The rule documents in order, and the version they are at, read together.
RULES = """
local docs = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local doc = redis.call('HGET', KEYS[2], id)
  if doc then table.insert(docs, doc) end
end
return {redis.call('GET', KEYS[3]) or '', docs}
"""
