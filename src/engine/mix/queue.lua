-- mix.queue.push(topic, data): data is any Lua value; tables travel as JSON. Returns n, err.
local F = ...
local host, mix, block, encode_item = F.host, F.mix, F.block, F.json.encode_item
mix.queue = {}

-- mix.queue.new(name, size) of 1.0.0/1.0.1 scripts (their init()): topics exist from their first push here,
-- bounded by engine.luavm.queue.topicSize, so this only checks its arguments.
function mix.queue.new(name, size)
  if type(name) ~= "string" or name == "" then return "invalid topic" end
  if size ~= nil and not tonumber(size) then return "invalid size: " .. tostring(size) end
end
function mix.queue.push(topic, data)
  if type(topic) ~= "string" or topic == "" then return nil, "invalid topic" end
  local json, err = encode_item(data)
  if not json then return nil, err end
  local n, err, client_id = host.queue_push(topic, json)
  if client_id then return block("queue.push", topic, json, client_id) end
  return n, err
end
