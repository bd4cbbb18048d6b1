-- mix.json_encode / mix.json_decode (json.ts), mix.null and mix.json_object.
local P, mix = ...

-- Tables with this metatable encode as JSON objects even when empty or keyed 1..n; json_decode gives it to
-- every `{}` it decodes so that an empty object survives a round trip.
local OBJECT = {}
debug.getregistry()["connmix.json_object"] = OBJECT

mix.null = P.json_null()
mix.json_encode = P.json_encode
mix.json_decode = P.json_decode

function mix.json_object(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then return nil, "json_object expects a table, got " .. type(t) end
  return setmetatable(t, OBJECT)
end
