-- mix.mesh.send / mix.mesh.publish: local delivery at once; other workers and nodes through a blocking op.
local F = ...
local host, mix, block, TYPE, MAX_CHANNEL_BYTES = F.host, F.mix, F.block, F.TYPE, F.MAX_CHANNEL_BYTES

local function check(data, t)
  local kind = TYPE[t or "text"]
  if not kind then return nil, "invalid message type: " .. tostring(t) end
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then return nil, "data must be a string, got " .. type(data) end
  return kind, data
end

mix.mesh = {}

-- Returns nil on success, else an error text.
function mix.mesh.send(client_id, data, t)
  local kind, d = check(data, t)
  if not kind then return d end
  local id = tonumber(client_id)
  if not id then return "invalid client id: " .. tostring(client_id) end
  local err, remote = host.mesh_send(id, d, kind)
  if remote then err = block("mesh.send", id, d, kind) end
  return err
end

-- Returns (delivered, failed) counted over the whole mesh.
function mix.mesh.publish(channel, data, t)
  local kind, d = check(data, t)
  if not kind then return 0, 0, d end
  if type(channel) ~= "string" or channel == "" then return 0, 0, "invalid channel" end
  if #channel > MAX_CHANNEL_BYTES then
    return 0, 0, "channel name too long: " .. #channel .. " bytes (at most " .. MAX_CHANNEL_BYTES .. ")"
  end
  local ok, fail, peers = host.mesh_publish(channel, d, kind)
  if peers then
    local rok, rfail = block("mesh.publish", channel, d, kind)
    ok, fail = ok + (rok or 0), fail + (rfail or 0)
  end
  return ok, fail
end
