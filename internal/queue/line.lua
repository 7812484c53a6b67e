-- The waiting line of one CAR project, as one script: every change is atomic
-- and every key is passed in KEYS (they share one hash tag).
--
-- KEYS: 1 line (zset user→join sequence), 2 seen (zset user→last poll ms),
--       3 ipof (hash user→client IP), 4 ipn (hash IP→places), 5 seq (counter),
--       6 cap (hash total, running, at = when DescribeConcurrentCount started,
--       full = when CAR last answered NoIdle), 7 lease (who refreshes cap),
--       8 grants (zset user→grant ms), 9 tries (zset user→ms: newcomers sent
--       to CAR while the line was empty), 10 hold (this user's holder mark:
--       it was handed a ServerSession), 11 lock (this user's right to start
--       after a lock-only grant, the demo's 10101), 12 epoch (hash id, born,
--       opened: which store this is; no TTL), 13 rebuild (the rebuild window
--       after the store lost its data: a hash of the users CAR answered
--       NoIdle in it, and of the window's tries per user and per address).
-- ARGV: 1 op, 2 now ms, 3 user, 4 client IP, 5 abandon ms, 6 max places per
--       IP, 7 holder expiry ms after a start, 8 key TTL ms, 9 flag
--       ("nolease": do not take the refresh lease), 10-12 total, running, at
--       (a fresh count to store, or ""), 13 lock window ms, 14 retention ms
--       (the rebuild window), 15 holder expiry ms after a heartbeat, 16 the
--       epoch this instance saw ("" none), 17 a new epoch id should none exist.
-- Returns {verdict, position, waiting, eta ms (-1 unknown), idle (-1 unknown),
--          total, running, epoch id}.
local LINE, SEEN, IPOF, IPN, SEQ, CAP, LEASE, GRANTS, TRIES, HOLD, LOCK, EPOCH, REBUILD =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11], KEYS[12], KEYS[13]
local op, now, user, ip = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local abandon, maxip, holdttl, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local flag = ARGV[9]
local nolease = flag == 'nolease'
local lockwin, retention, alivettl = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local known, fresh = ARGV[16], ARGV[17]

local FRESH = 1000     -- a count older than this is stale
local WINDOW = 120000  -- grants kept for the ETA (and at least FRESH)
local TRYTTL = 30000   -- a newcomer's try left unresolved (its request died)

-- verdicts
local HOLDER, GO, WAIT, FULL, REFRESH, STALE, OK, LOCKED = 1, 2, 3, 4, 5, 6, 7, 8

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

-- lease takes the right to refresh the count for a second, unless another
-- caller holds it: until the value (the line's clock) and at most a second
-- of Redis's (PX: a clock ahead holds it no longer). A refresh never
-- releases it.
local function lease()
  local til = tonumber(redis.call('GET', LEASE) or '')
  if til and til > now then return false end
  redis.call('SET', LEASE, now + FRESH, 'PX', FRESH)
  return true
end

-- refused reports whether CAR answered NoIdle to anyone within the last
-- second.
local function refused()
  local full = tonumber(redis.call('HGET', CAP, 'full') or '')
  return full ~= nil and now - full < FRESH and full - now < FRESH
end

-- place answers for a user in the line: GO when it may call CAR now (the
-- head may unless CAR answered NoIdle within the last second, so a head
-- polling as fast as it can makes at most one try a second; others when
-- their position is within the idle count, unless they just joined), else
-- WAIT.
local function place(joined, idle, total, running)
  local rank = redis.call('ZRANK', LINE, user)
  local waiting = redis.call('ZCARD', LINE)
  if not rank then return {WAIT, 0, waiting, -1, idle, total, running} end
  local pos = rank + 1
  local verdict = WAIT
  if (pos == 1 and not refused()) or (not joined and idle >= pos) then verdict = GO end
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

-- epoch says which store this is, and opens the rebuild window when data
-- this instance saw is gone: the epoch it knew is absent (a restart without
-- persistence, a failover to an empty replica, FLUSHALL) or another one. An
-- instance that knew none (a new line, a new prefix, a cold instance) opens
-- nothing. The window lasts CAR's retention from the new epoch's birth, and
-- opens once per epoch whichever instance notices first.
local function epoch()
  local e = redis.call('HMGET', EPOCH, 'id', 'born', 'opened')
  local id, born = e[1], tonumber(e[2] or '')
  if not id then
    id, born = fresh, now
    redis.call('HSET', EPOCH, 'id', id, 'born', now)
  end
  if known ~= '' and known ~= id and not e[3] then
    redis.call('HSET', EPOCH, 'opened', now)
    local left = math.min((born or now) + retention - now, retention)
    if left > 0 then
      redis.call('HSET', REBUILD, 'epoch ', id) -- a field no UserId can name (no spaces)
      redis.call('PEXPIRE', REBUILD, left)
    end
  end
  return tonumber(id) or 0
end

-- serve runs the op and returns its reply (nil for an unknown op). Its
-- body is left at the top level's indentation.
local function serve()
if ARGV[12] ~= '' then
  -- a fresh count; the lease is not released: it lapses after its second
  -- (a count slower than that comes back after another caller took the
  -- next lease, which releasing would hand to a third at once)
  redis.call('HSET', CAP, 'total', ARGV[10], 'running', ARGV[11], 'at', ARGV[12])
  redis.call('PEXPIRE', CAP, 60000)
end
prune()

if op == 'poll' then
  if redis.call('EXISTS', HOLD) == 1 then return {HOLDER, 0, redis.call('ZCARD', LINE), -1, -1, -1, -1} end
  if redis.call('EXISTS', LOCK) == 1 then return {LOCKED, 0, redis.call('ZCARD', LINE), -1, -1, -1, -1} end
  if redis.call('EXISTS', REBUILD) == 1 and redis.call('HEXISTS', REBUILD, user) == 0 then
    -- the store lost its data: whoever CAR has not answered NoIdle since
    -- may be a player reconnecting within CAR's retention (also one a
    -- cold instance placed before the loss was noticed); CAR tells, and
    -- NoIdle places the caller in the rebuilt line. An address gets at
    -- most QUEUE_MAX_PER_IP such tries (its users', whatever their
    -- outcome): one client with many UserIds then follows the line's rules
    -- (UserIds hold no space, so the 'go '/'ip ' fields never clash)
    local mine = redis.call('HEXISTS', REBUILD, 'go ' .. user) == 1
    if mine or tonumber(redis.call('HGET', REBUILD, 'ip ' .. ip) or '0') < maxip then
      if not mine then
        redis.call('HSET', REBUILD, 'go ' .. user, now)
        redis.call('HINCRBY', REBUILD, 'ip ' .. ip, 1)
      end
      -- a poll: a place it has (a cold instance placed it) is kept
      if redis.call('ZSCORE', LINE, user) then
        redis.call('ZADD', SEEN, now, user)
        touch()
      end
      return {GO, 0, redis.call('ZCARD', LINE), -1, -1, -1, -1}
    end
  end
  local total, running, idle = count()
  if idle < 0 and not nolease and lease() then
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
elseif op == 'granted' or op == 'locked' then
  -- every grant counts against the idle figure, a holder's too (its
  -- concurrency may have been reclaimed and this one newly taken)
  drop(user)
  redis.call('ZREM', TRIES, user)
  redis.call('ZADD', GRANTS, now, user)
  if op == 'granted' then
    -- handed a ServerSession: a holder for QUEUE_HOLD_TTL, or, once its
    -- client heartbeats ('beat'), for a heartbeat's expiry from now
    if redis.call('GET', HOLD) == 'beat' then
      redis.call('SET', HOLD, 'beat', 'PX', alivettl)
    else
      redis.call('SET', HOLD, '1', 'PX', holdttl)
    end
    redis.call('DEL', LOCK)
  else
    -- a lock without a session: the right to start for the lock window
    -- from the first lock, never extended
    redis.call('SET', LOCK, '1', 'NX', 'PX', lockwin)
  end
  touch()
  return {OK, 0, redis.call('ZCARD', LINE), -1, -1, -1, -1}
elseif op == 'noidle' then
  redis.call('HSET', CAP, 'full', now)
  redis.call('PEXPIRE', CAP, 60000)
  redis.call('ZREM', TRIES, user)
  redis.call('DEL', HOLD, LOCK)
  if redis.call('EXISTS', REBUILD) == 1 then redis.call('HSET', REBUILD, user, now) end
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
elseif op == 'held' then
  -- a grant made while the store did not answer, recorded once it does:
  -- the user becomes a holder unless it has a mark already or has since
  -- taken a place (CAR answered it NoIdle: its concurrency is gone)
  if redis.call('ZSCORE', LINE, user) then return {OK, 0, 0, -1, -1, -1, -1} end
  redis.call('SET', HOLD, '1', 'NX', 'PX', holdttl)
  return {HOLDER, 0, 0, -1, -1, -1, -1}
elseif op == 'failed' then
  redis.call('ZREM', TRIES, user)
  return {OK, 0, 0, -1, -1, -1, -1}
elseif op == 'leave' or op == 'quit' then
  drop(user)
  redis.call('ZREM', TRIES, user)
  if op == 'quit' then redis.call('DEL', HOLD, LOCK) end
  return {OK, 0, 0, -1, -1, -1, -1}
elseif op == 'alive' then
  -- a heartbeat: a holder keeps its mark for CAR's retention (and two
  -- missed heartbeats) from now, and its later starts too; nobody else
  -- gets one
  if redis.call('SET', HOLD, 'beat', 'XX', 'PX', alivettl) then return {HOLDER, 0, 0, -1, -1, -1, -1} end
  return {OK, 0, 0, -1, -1, -1, -1}
elseif op == 'capacity' then
  local total, running, idle = count()
  local waiting = redis.call('ZCARD', LINE)
  if idle < 0 then
    if not nolease and lease() then
      return {REFRESH, 0, waiting, -1, -1, total, running}
    end
    return {STALE, 0, waiting, -1, -1, total, running}
  end
  return {OK, 0, waiting, -1, idle, total, running}
end
return nil
end

local id = epoch()
local r = serve()
if not r then return redis.error_reply('unknown op') end
r[8] = id
return r
