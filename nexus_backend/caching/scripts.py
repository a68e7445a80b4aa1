"""The Lua scripts of the cache (``store.py``): each runs in Redis as one atomic step of the read path (read,
store, release a lock) or the write path (bump version counters). What each takes and returns is above it."""

from __future__ import annotations

from redis.commands.core import Script

# KEYS: stats hash, then the version keys (epoch first).
# ARGV: value key base, namespace, count mode (1: hit/miss, 2: coalesced on a hit, 0: nothing), lock ttl ms
#       (0: do not lock), lock token.
# Returns {1, versions, value} on a hit, {0, versions, locked} on a miss.
READ_LUA = """
local versions = {}
for i = 2, #KEYS do
  versions[#versions + 1] = redis.call('GET', KEYS[i]) or '0'
end
local seen = table.concat(versions, '.')
local key = ARGV[1] .. ':' .. seen
local value = redis.call('GET', key)
if value then
  if ARGV[3] == '1' then
    redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':hit', 1)
  elseif ARGV[3] == '2' then
    redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':coalesced', 1)
  end
  return {1, seen, value}
end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':miss', 1)
end
local locked = 0
if ARGV[4] ~= '0' and redis.call('SET', key .. ':lock', ARGV[5], 'NX', 'PX', ARGV[4]) then
  locked = 1
end
return {0, seen, locked}
"""

# KEYS: stats hash, then the version keys (epoch first).
# ARGV: value key base, the versions the reader saw ('.'-joined), body, ttl ms (0: do not store), namespace,
#       lock token ('' if none), version ttl ms.
# Stores only if every version is still the one the reader saw: a write that committed after the reader read the
# database has bumped one, and the stale body is discarded. A counter still missing is seeded from the clock (so
# nothing is ever stored under a '0' that an expired counter could come back to). Returns 1 if stored.
STORE_LUA = """
local seen = {}
for v in string.gmatch(ARGV[2], '[^.]+') do seen[#seen + 1] = v end
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%06d', now[2])
local current = {}
local same = true
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    if seen[i - 1] == '0' then
      redis.call('SET', KEYS[i], fresh, 'PX', ARGV[7])
      v = fresh
    else
      same = false
    end
  elseif v ~= seen[i - 1] then
    same = false
  end
  current[#current + 1] = v
end
local oldkey = ARGV[1] .. ':' .. ARGV[2]
redis.call('HINCRBY', KEYS[1], ARGV[5] .. ':compute', 1)
local stored = 0
if not same then
  redis.call('HINCRBY', KEYS[1], ARGV[5] .. ':discarded', 1)
elseif ARGV[4] ~= '0' then
  redis.call('SET', ARGV[1] .. ':' .. table.concat(current, '.'), ARGV[3], 'PX', ARGV[4])
  stored = 1
end
if ARGV[6] ~= '' and redis.call('GET', oldkey .. ':lock') == ARGV[6] then
  redis.call('DEL', oldkey .. ':lock')
end
return stored
"""

# KEYS: lock key. ARGV: token. Releases the lock only if we still hold it.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: version keys to bump. ARGV: version ttl ms (0: no expiry).
# A missing counter is seeded from the server clock (microseconds) before the increment.
BUMP_LUA = """
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%06d', now[2])
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('SET', KEYS[i], fresh)
  end
  redis.call('INCR', KEYS[i])
  if ARGV[1] ~= '0' then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return #KEYS
"""

_scripts: dict[str, Script] = {}


def script(name: str, source: str, conn) -> Script:
    """The named script, registered once per process (its sha1 computed once; EVALSHA, loaded on NOSCRIPT)."""
    found = _scripts.get(name)
    if found is None:
        found = _scripts[name] = Script(conn, source)
    return found
