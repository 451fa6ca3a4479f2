-- KEYS: counter hashes (fields used, reserved); each has a lease zset KEYS[i]..':leases'
-- whose members are '<lease>|<amount>' scored by their deadline (ms).
-- ARGV: now_ms, deadline_ms, lease, then per key: amount, limit, ttl_s (a counter counts
-- nano-USD or tokens, so each key takes its own amount).
-- All or nothing: either every counter takes the reservation or none does.
local now = tonumber(ARGV[1])
local used, reserved = {}, {}
for i, key in ipairs(KEYS) do
  local leases = key .. ':leases'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
    redis.call('HINCRBY', key, 'reserved', '-' .. string.match(m, '|(%d+)$'))
    redis.call('ZREM', leases, m)
  end
  local u = tonumber(redis.call('HGET', key, 'used') or '0')
  local r = tonumber(redis.call('HGET', key, 'reserved') or '0')
  used[i], reserved[i] = u, r
  if u + r + tonumber(ARGV[1 + 3 * i]) > tonumber(ARGV[2 + 3 * i]) then
    return {i, used, reserved}
  end
end
for i, key in ipairs(KEYS) do
  local amount, ttl = ARGV[1 + 3 * i], ARGV[3 + 3 * i]
  redis.call('HINCRBY', key, 'reserved', amount)
  redis.call('ZADD', key .. ':leases', ARGV[2], ARGV[3] .. '|' .. amount)
  redis.call('EXPIRE', key, ttl)
  redis.call('EXPIRE', key .. ':leases', ttl)
end
return {0, used, reserved}
