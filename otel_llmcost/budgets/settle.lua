-- KEYS: the counters of one reservation. ARGV: member, reserved amount, actual amount ('' = release).
-- A lease already dropped as expired gave its amount back then: never subtract twice.
for _, key in ipairs(KEYS) do
  if redis.call('ZREM', key .. ':leases', ARGV[1]) == 1 then
    redis.call('HINCRBY', key, 'reserved', '-' .. ARGV[2])
  end
  if ARGV[3] ~= '' then
    redis.call('HINCRBY', key, 'used', ARGV[3])
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, 86400) end
  end
end
return 1
