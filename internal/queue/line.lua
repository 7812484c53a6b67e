-- The waiting line of one CAR project, as one script: every change is atomic
-- and every key is passed in KEYS (they share one hash tag).
--
-- KEYS: 1 line (zset user→join sequence), 2 seen (zset user→last poll ms),
--       3 ipof (hash user→client IP), 4 ipn (hash IP→places), 5 seq (counter),
--       6 cap (hash total, running, at = when DescribeConcurrentCount started,
--       full = when CAR last answered NoIdle), 7 lease (who refreshes cap),
--       8 grants (zset user→grant ms), 9 tries (zset user→ms: newcomers sent
--       to CAR while the line was empty), 10 hold (this user's holder mark).
-- ARGV: 1 op, 2 now ms, 3 user, 4 client IP, 5 abandon ms, 6 max places per
--       IP, 7 holder expiry ms, 8 key TTL ms, 9 flag ("nolease": do not take
--       the refresh lease; "holder": a grant to a holder, not counted),
--       10-12 total, running, at (a fresh count to store, or "").
-- Returns {verdict, position, waiting, eta ms (-1 unknown), idle (-1 unknown),
--          total, running}.
local LINE, SEEN, IPOF, IPN, SEQ, CAP, LEASE, GRANTS, TRIES, HOLD =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local op, now, user, ip = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local abandon, maxip, holdttl, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local flag = ARGV[9]
local nolease = flag == 'nolease'

local FRESH = 1000     -- a count older than this is stale
local WINDOW = 120000  -- grants kept for the ETA (and at least FRESH)
local TRYTTL = 30000   -- a newcomer's try left unresolved (its request died)

-- verdicts
local HOLDER, GO, WAIT, FULL, REFRESH, STALE, OK = 1, 2, 3, 4, 5, 6, 7

local function drop(u)
  redis.call('ZREM', LINE, u)
  redis.call('ZREM', SEEN, u)
  local addr = redis.call('HGET', IPOF, u)
  if addr then
    redis.call('HDEL', IPOF, u)
    if redis.call('HINCRBY', IPN, addr, -1) <= 0 then redis.call('HDEL', IPN, addr) end
  end
end

local function prune()
  local old = redis.call('ZRANGEBYSCORE', SEEN, '-inf', now - abandon, 'LIMIT', 0, 200)
  for _, u in ipairs(old) do drop(u) end
  redis.call('ZREMRANGEBYSCORE', TRIES, '-inf', now - TRYTTL)
  redis.call('ZREMRANGEBYSCORE', GRANTS, '-inf', now - WINDOW)
end

local function touch()
  for _, k in ipairs({LINE, SEEN, IPOF, IPN, SEQ}) do redis.call('PEXPIRE', k, ttl) end
  redis.call('PEXPIRE', GRANTS, WINDOW)
  redis.call('PEXPIRE', TRIES, TRYTTL)
end

-- count returns total, running, idle: idle is -1 while the count is stale,
-- 0 for a second after CAR answered NoIdle, else total - running less the
-- grants made since the count was taken.
local function count()
  local c = redis.call('HMGET', CAP, 'total', 'running', 'at', 'full')
  if not c[3] then return -1, -1, -1 end
  local total, running, at = tonumber(c[1]), tonumber(c[2]), tonumber(c[3])
  if now - at >= FRESH or at - now >= FRESH then return total, running, -1 end
  if c[4] and tonumber(c[4]) >= at and now - tonumber(c[4]) < FRESH then return total, running, 0 end
  local idle = total - running - redis.call('ZCOUNT', GRANTS, at, '+inf')
  if idle < 0 then idle = 0 end
  return total, running, idle
end

local function eta(pos)
  local n = redis.call('ZCARD', GRANTS)
  if n < 2 then return -1 end
  local oldest = tonumber(redis.call('ZRANGE', GRANTS, 0, 0, 'WITHSCORES')[2])
  local span = now - oldest
  if span < FRESH then span = FRESH end
  return math.floor(pos * span / n)
end

-- place answers for a user in the line: GO when it may call CAR now (the
-- head always may; others when their position is within the idle count,
-- unless they just joined), else WAIT.
local function place(joined, idle, total, running)
  local rank = redis.call('ZRANK', LINE, user)
  local waiting = redis.call('ZCARD', LINE)
  if not rank then return {WAIT, 0, waiting, -1, idle, total, running} end
  local pos = rank + 1
  local verdict = WAIT
  if pos == 1 or (not joined and idle >= pos) then verdict = GO end
  return {verdict, pos, waiting, eta(pos), idle, total, running}
end

-- join puts the user at the end of the line, within the per-IP cap (none
-- for ip '': the address is not public).
local function join()
  local n = tonumber(redis.call('HGET', IPN, ip) or '0')
  if ip ~= '' and n >= maxip then return false end
  redis.call('ZADD', LINE, redis.call('INCR', SEQ), user)
  redis.call('ZADD', SEEN, now, user)
  if ip == '' then return true end -- not a public address: not capped
  redis.call('HSET', IPOF, user, ip)
  redis.call('HINCRBY', IPN, ip, 1)
  return true
end

if ARGV[12] ~= '' then
  redis.call('HSET', CAP, 'total', ARGV[10], 'running', ARGV[11], 'at', ARGV[12])
  redis.call('PEXPIRE', CAP, 60000)
  redis.call('DEL', LEASE)
end
prune()

if op == 'poll' then
  if redis.call('EXISTS', HOLD) == 1 then return {HOLDER, 0, redis.call('ZCARD', LINE), -1, -1, -1, -1} end
  local total, running, idle = count()
  if idle < 0 and not nolease and redis.call('SET', LEASE, user, 'NX', 'PX', FRESH) then
    return {REFRESH, 0, 0, -1, -1, total, running}
  end
  local joined = false
  if redis.call('ZSCORE', LINE, user) then
    redis.call('ZADD', SEEN, now, user)
  elseif redis.call('ZCARD', LINE) == 0 and idle > redis.call('ZCARD', TRIES) then
    redis.call('ZADD', TRIES, now, user)
    touch()
    return {GO, 0, 0, -1, idle, total, running}
  elseif join() then
    joined = true
  else
    return {FULL, 0, redis.call('ZCARD', LINE), -1, idle, total, running}
  end
  touch()
  return place(joined, idle, total, running)
elseif op == 'granted' then
  drop(user)
  redis.call('ZREM', TRIES, user)
  if flag ~= 'holder' then redis.call('ZADD', GRANTS, now, user) end
  redis.call('SET', HOLD, '1', 'PX', holdttl)
  touch()
  return {OK, 0, redis.call('ZCARD', LINE), -1, -1, -1, -1}
elseif op == 'noidle' then
  redis.call('HSET', CAP, 'full', now)
  redis.call('PEXPIRE', CAP, 60000)
  redis.call('ZREM', TRIES, user)
  redis.call('DEL', HOLD)
  local total, running, idle = count()
  if redis.call('ZSCORE', LINE, user) then
    redis.call('ZADD', SEEN, now, user)
  elseif not join() then
    return {FULL, 0, redis.call('ZCARD', LINE), -1, idle, total, running}
  end
  touch()
  local r = place(false, idle, total, running)
  r[1] = WAIT
  return r
elseif op == 'failed' then
  redis.call('ZREM', TRIES, user)
  return {OK, 0, 0, -1, -1, -1, -1}
elseif op == 'leave' or op == 'quit' then
  drop(user)
  redis.call('ZREM', TRIES, user)
  if op == 'quit' then redis.call('DEL', HOLD) end
  return {OK, 0, 0, -1, -1, -1, -1}
elseif op == 'capacity' then
  local total, running, idle = count()
  local waiting = redis.call('ZCARD', LINE)
  if idle < 0 then
    if not nolease and redis.call('SET', LEASE, 'capacity', 'NX', 'PX', FRESH) then
      return {REFRESH, 0, waiting, -1, -1, total, running}
    end
    return {STALE, 0, waiting, -1, -1, total, running}
  end
  return {OK, 0, waiting, -1, idle, total, running}
end
return redis.error_reply('unknown op')
