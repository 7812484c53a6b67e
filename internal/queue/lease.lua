-- Session leases of one CAR project (docs/lease.md), as one script: every
-- change is atomic and every key is passed in KEYS (they share the line's
-- hash tag). A lease is one field of a hash, so that a sweep can read and
-- claim many leases while touching only declared keys.
--
-- KEYS: 1 leases (hash user→record), 2 ends (zset user→end ms: leases not
--       yet destroyed nor claimed), 3 claims (zset user→claim expiry ms),
--       4 gen (counter: every lease's generation is new), 5 rate (hash
--       s = second, n = claims in it), 6 cool (zset user→ms: destroyed
--       leases whose cooldown runs until then).
-- ARGV: 1 op, 2 now ms, 3 user, 4-7 by op (below).
-- A record is "end gen renews claim done": claim is the claim's expiry (0:
-- none), done 1 once the session was destroyed.
--
-- Every op but claim, done and release returns {state, end, gen, renews,
-- retry ms}:
local NONE, ACTIVE, ENDED, ENDING, COOLING, LIMIT, MINE = 0, 1, 2, 3, 4, 5, 6
-- NONE: no lease; ACTIVE: end in the future; ENDED: ended, not destroyed,
-- not claimed; ENDING: ended and claimed by a sweep (or a stop) now
-- destroying it; COOLING: destroyed, the cooldown runs for retry ms;
-- LIMIT: a renewal refused, the renewals are used up; MINE: ended, and
-- the caller now holds the claim of generation gen.
local LEASES, ENDS, CLAIMS, GEN, RATE, COOL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local op, now, user = ARGV[1], tonumber(ARGV[2]), ARGV[3]

-- second ends a lease d ms from now on a whole second, so that the end a
-- reply gives (RFC 3339, whole seconds) is the lease's end exactly.
local function second(d)
  return math.floor((now + d) / 1000) * 1000
end

local function read(u)
  local raw = redis.call('HGET', LEASES, u)
  if not raw then return nil end
  local e, g, r, c, d = string.match(raw, '^(%d+) (%d+) (%d+) (%d+) (%d)$')
  return {e = tonumber(e), g = tonumber(g), r = tonumber(r), c = tonumber(c), d = tonumber(d)}
end

local function write(u, l)
  redis.call('HSET', LEASES, u, string.format('%d %d %d %d %d', l.e, l.g, l.r, l.c, l.d))
end

-- prune forgets destroyed leases whose cooldown is over, and hands claims
-- whose sweep died back to the next sweep.
local function prune()
  for _, u in ipairs(redis.call('ZRANGEBYSCORE', COOL, '-inf', now, 'LIMIT', 0, 100)) do
    redis.call('ZREM', COOL, u)
    local l = read(u)
    if l and l.d == 1 then redis.call('HDEL', LEASES, u) end
  end
  for _, u in ipairs(redis.call('ZRANGEBYSCORE', CLAIMS, '-inf', now, 'LIMIT', 0, 100)) do
    redis.call('ZREM', CLAIMS, u)
    local l = read(u)
    if l and l.d == 0 then
      l.c = 0
      write(u, l)
      redis.call('ZADD', ENDS, l.e, u)
    end
  end
end

local function state(l, cooldown)
  if not l then return {NONE, 0, 0, 0, 0} end
  if l.d == 1 then
    local until_ = tonumber(redis.call('ZSCORE', COOL, user) or now)
    return {COOLING, l.e, l.g, l.r, math.max(0, until_ - now)}
  end
  if l.e > now then return {ACTIVE, l.e, l.g, l.r, 0} end
  local retry = math.max(0, l.e + cooldown - now)
  if l.c > now then return {ENDING, l.e, l.g, l.r, retry} end
  return {ENDED, l.e, l.g, l.r, retry}
end

-- touch keeps every key for KEEP past the last lease's end or cooldown (an
-- abandoned project's leases go away; a live project's writes refresh it).
-- A lease whose session no sweep destroyed within KEEP of its end is
-- forgotten with them.
local KEEP = 7 * 24 * 3600 * 1000
local function touch()
  local horizon = now
  for _, k in ipairs({ENDS, COOL}) do
    local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
    if last[2] and tonumber(last[2]) > horizon then horizon = tonumber(last[2]) end
  end
  for _, k in ipairs({LEASES, ENDS, CLAIMS, GEN, COOL}) do redis.call('PEXPIRE', k, horizon - now + KEEP) end
end

-- newgen returns a generation no lease had. A missing counter (the store
-- lost its data: FLUSHALL, a failover to an empty replica, or a week
-- unused) starts from the clock, ms x 1000, above any generation handed
-- before: a claim still in flight from before never matches a new lease.
local function newgen()
  if redis.call('EXISTS', GEN) == 0 then redis.call('SET', GEN, string.format('%.0f', now * 1000)) end
  return redis.call('INCR', GEN)
end

-- rearm makes an ended lease a new generation, not claimed and not
-- destroyed: a session handed after its end (a start that raced it) is
-- destroyed by the next sweep, and a claim on the older generation cannot
-- mark it done.
local function rearm(l)
  l.g, l.c, l.d = newgen(), 0, 0
  if l.e > now then l.e = now end
  write(user, l)
  redis.call('ZREM', CLAIMS, user)
  redis.call('ZREM', COOL, user)
  redis.call('ZADD', ENDS, l.e, user)
end

prune()

local ops = {}

ops.check = function()
  -- ARGV 4: cooldown ms
  return state(read(user), tonumber(ARGV[4]))
end

ops.create = function()
  -- ARGV 4: lease ms, 5: cooldown ms. A live lease keeps its end.
  local l = read(user)
  if not l then
    l = {e = second(tonumber(ARGV[4])), g = newgen(), r = 0, c = 0, d = 0}
    write(user, l)
    redis.call('ZADD', ENDS, l.e, user)
    return state(l, 0)
  end
  if l.d == 0 and l.e > now then return state(l, 0) end
  rearm(l)
  return state(l, tonumber(ARGV[5]))
end

ops.renew = function()
  -- ARGV 4: lease ms, 5: renewals allowed, 6: cooldown ms
  local l = read(user)
  if not l or l.d == 1 or l.e <= now then return state(l, tonumber(ARGV[6])) end
  if l.r >= tonumber(ARGV[5]) then return {LIMIT, l.e, l.g, l.r, 0} end
  l.e, l.r = math.max(l.e, second(tonumber(ARGV[4]))), l.r + 1
  write(user, l)
  redis.call('ZADD', ENDS, l.e, user)
  return state(l, 0)
end

ops['end'] = function()
  -- A stop. ARGV 4: claim ms, 5: cooldown ms. The lease ends now; the
  -- stopper claims it unless a sweep already did. Returns ENDING with the
  -- generation to mark done when the stopper holds the claim, else the
  -- lease's state.
  local l = read(user)
  if not l or l.d == 1 then return state(l, tonumber(ARGV[5])) end
  if l.e > now then l.e = now end
  if l.c > now then -- a sweep is destroying it
    write(user, l)
    return state(l, tonumber(ARGV[5]))
  end
  l.c = now + tonumber(ARGV[4])
  write(user, l)
  redis.call('ZREM', ENDS, user)
  redis.call('ZADD', CLAIMS, l.c, user)
  local s = state(l, tonumber(ARGV[5]))
  s[1] = MINE
  return s
end

ops.claimone = function()
  -- A start by a user whose lease ended and whose cooldown is over: it
  -- destroys its own ended session first. ARGV 4: claim ms.
  local l = read(user)
  if not l or l.d == 1 or l.e > now or l.c > now then return state(l, 0) end
  l.c = now + tonumber(ARGV[4])
  write(user, l)
  redis.call('ZREM', ENDS, user)
  redis.call('ZADD', CLAIMS, l.c, user)
  local s = state(l, 0)
  s[1] = MINE
  return s
end

ops.done = function()
  -- The session of generation ARGV 4 was destroyed. ARGV 5: cooldown ms.
  -- Returns {1} when it was this lease's current generation, else {0}.
  local l = read(user)
  if not l or l.d == 1 or l.g ~= tonumber(ARGV[4]) then return {0} end
  l.c, l.d = 0, 1
  redis.call('ZREM', ENDS, user)
  redis.call('ZREM', CLAIMS, user)
  local until_ = l.e + tonumber(ARGV[5])
  if until_ <= now then
    redis.call('HDEL', LEASES, user)
  else
    write(user, l)
    redis.call('ZADD', COOL, until_, user)
  end
  return {1}
end

ops.release = function()
  -- Destroying generation ARGV 4 failed: the claim holds for ARGV 5 ms
  -- more (a backoff), then the next sweep retakes it.
  local l = read(user)
  if not l or l.d == 1 or l.g ~= tonumber(ARGV[4]) or l.c == 0 then return {0} end
  l.c = now + tonumber(ARGV[5])
  write(user, l)
  redis.call('ZADD', CLAIMS, l.c, user)
  return {1}
end

ops.claim = function()
  -- A sweep. ARGV 4: at most this many, 5: claim ms, 6: claims per second
  -- (across instances). Claims ended leases, oldest end first. Returns
  -- {claimed, due left, ms until the rate allows more, user1, gen1, end1, ...}.
  local limit, ttl, rate = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local sec = math.floor(now / 1000)
  local r = redis.call('HMGET', RATE, 's', 'n')
  local used = 0
  if tonumber(r[1]) == sec then used = tonumber(r[2]) end
  local take = math.min(limit, rate - used)
  local out = {0, 0, 0}
  if take > 0 then
    for _, u in ipairs(redis.call('ZRANGEBYSCORE', ENDS, '-inf', now, 'LIMIT', 0, take)) do
      local l = read(u)
      redis.call('ZREM', ENDS, u)
      if l and l.d == 0 then
        l.c = now + ttl
        write(u, l)
        redis.call('ZADD', CLAIMS, l.c, u)
        out[1] = out[1] + 1
        table.insert(out, u)
        table.insert(out, l.g)
        table.insert(out, l.e)
      end
    end
    used = used + out[1]
    redis.call('HSET', RATE, 's', sec, 'n', used)
    redis.call('PEXPIRE', RATE, 2000)
  end
  out[2] = redis.call('ZCOUNT', ENDS, '-inf', now)
  if out[2] > 0 and used >= rate then out[3] = (sec + 1) * 1000 - now end
  return out
end

local run = ops[op]
if not run then return redis.error_reply('lease: unknown op ' .. tostring(op)) end
local out = run()
if op ~= 'check' then touch() end
return out
