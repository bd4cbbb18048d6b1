-- mix.queue.push(topic, data): data is any Lua value; tables travel as JSON. Returns n, err.
local P, mix = ...
mix.queue = {}
function mix.queue.push(topic, data)
  if type(topic) ~= "string" or topic == "" then return nil, "invalid topic" end
  local json, err = mix.json_encode(data)
  if not json then return nil, err end
  return P.queue_push(topic, json)
end
