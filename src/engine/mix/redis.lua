-- mix.redis.connection(name) -> redis, err and redis:command(cmd, ...) -> reply, err; each command is a
-- blocking op (redis.ts) on the pool of an engine.luavm.redis entry.
local F = ...
local host, mix, block, encode_item = F.host, F.mix, F.block, F.json.encode_item

local Redis = {}
Redis.__index = Redis
local made = {} -- name -> connection object

mix.redis = {}

function mix.redis.connection(name)
  if name == nil then name = "default" end
  if type(name) ~= "string" then return nil, "redis connection name must be a string, got " .. type(name) end
  local r = made[name]
  if r then return r end
  if not host.redis_configured(name) then
    return nil, "no redis connection named '" .. name .. "' in engine.luavm.redis"
  end
  r = setmetatable({ name = name }, Redis)
  made[name] = r
  return r
end

-- The 1.0.1 Redis-list queue: LPUSH onto list `topic` of the `default` connection an item shaped like the
-- `p` of a queue.pop event (node index, client id, topic, data as JSON); a backend BRPOPs them in push order.
-- Returns the list's length, or nil and the error.
function mix.redis.push(topic, data)
  if type(topic) ~= "string" or topic == "" then return nil, "invalid topic" end
  local json, err = encode_item(data)
  if not json then return nil, err end
  if not coroutine.running() then return nil, "mix.redis.push can only wait inside a callback" end
  return block("redis.push", topic, json)
end

-- The key helpers of older connmix docs (custom-protocols.md), on the `default` connection:
-- llen/get/incr/decr return the reply, set returns "OK" (expire: seconds, 0 or nil for none); nil, err on failure.
local function on_default(...)
  local r, err = mix.redis.connection("default")
  if not r then return nil, err end
  return r:command(...)
end

function mix.redis.llen(key) return on_default("LLEN", key) end
function mix.redis.get(key) return on_default("GET", key) end
function mix.redis.incr(key, num) return on_default("INCRBY", key, num or 1) end
function mix.redis.decr(key, num) return on_default("DECRBY", key, num or 1) end

function mix.redis.set(key, val, expire)
  if expire == nil or expire == 0 then return on_default("SET", key, val) end
  if type(expire) ~= "number" or expire < 0 then
    return nil, "redis set: expire must be a number of seconds (0 for none), got " .. tostring(expire)
  end
  return on_default("SET", key, val, "PX", math.floor(expire * 1000 + 0.5))
end

function Redis:command(cmd, ...)
  if getmetatable(self) ~= Redis then return nil, "call it as redis:command(...)" end
  if type(cmd) ~= "string" or cmd == "" then return nil, "redis command must be a non-empty string" end
  -- Waiting needs a callback's coroutine; the entry's load and protocol_encode run without one.
  if not coroutine.running() then return nil, "redis:command can only wait inside a callback" end
  for i = 1, select("#", ...) do
    local t = type((select(i, ...)))
    if t ~= "string" and t ~= "number" then
      return nil, "redis argument " .. i .. " must be a string or a number, got " .. t
    end
  end
  return block("redis.command", self.name, cmd, ...)
end
