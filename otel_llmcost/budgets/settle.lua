-- KEYS: the counters of one reservation. ARGV: lease, then per key: reserved amount,
-- actual amount ('' = release).
-- A lease already dropped as expired gave its amount back then: never subtract twice.
for i, key in ipairs(KEYS) do
  local amount, actual = ARGV[2 * i], ARGV[1 + 2 * i]
  if redis.call('ZREM', key .. ':leases', ARGV[1] .. '|' .. amount) == 1 then
    redis.call('HINCRBY', key, 'reserved', '-' .. amount)
  end
  if actual ~= '' then
    redis.call('HINCRBY', key, 'used', actual)
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, 86400) end
  end
end
return 1
