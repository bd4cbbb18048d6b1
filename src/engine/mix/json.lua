-- mix.json_encode / mix.json_decode / mix.null (C functions: native/json.c) and mix.json_object.
local F = ...
local host, mix = F.host, F.mix

-- Tables with this metatable encode as JSON objects even when empty or keyed 1..n; json_decode gives it to
-- every `{}` it decodes so that an empty object survives a round trip.
local OBJECT = {}
debug.getregistry()["connmix.json_object"] = OBJECT

mix.null = host.json_null()
mix.json_encode = host.json_encode
mix.json_decode = host.json_decode

function mix.json_object(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then return nil, "json_object expects a table, got " .. type(t) end
  return setmetatable(t, OBJECT)
end

-- The JSON text of a queue item (mix.queue.push, mix.redis.push). connmix's own scripts push what
-- mix.json_encode made, and its backends read that as an object: a string holding a JSON object or array
-- is taken as already encoded. Any other value is encoded, other strings as JSON strings.
local json_encode, json_decode, find = host.json_encode, host.json_decode, string.find
local function encode_item(data)
  if type(data) == "string" and find(data, "^%s*[{%[]") and json_decode(data) ~= nil then return data end
  return json_encode(data)
end

-- Exports, for the families that send values as JSON (queue, redis).
return { encode = json_encode, encode_item = encode_item }
