-- Events of `websocket` servers: on_handshake, on_message, on_close (spec 4.1).
-- F: see src/lua/family.ts and this family's declaration in connection.ts.
local F = ...
local host, H, S, EV, TYPE, entry = F.host, F.H, F.S, F.EV, F.TYPE, F.entry
local conns = F.connection.conns

-- info = { addr, headers, server }; the callback may return false[, status[, message]] to refuse.
H[EV.handshake] = function(id, info)
  H[EV.open](id, info)
  local c = conns[id]
  S.conn = c
  local f = on_handshake
  local ok, status, message = true, nil, nil
  if f then
    if entry.legacy then ok, status, message = f(info.headers, c)
    else ok, status, message = f(id, info.headers, info.server, c) end
  end
  if ok == false then
    conns[id] = nil
    host.handshake_result(id, false, tonumber(status) or 403, message and tostring(message) or "Forbidden")
  else
    host.handshake_result(id, true)
  end
end

-- One message per frame sequence; kind is TYPE.text or TYPE.binary.
local BINARY = TYPE.binary
H[EV.message] = function(id, data, kind)
  local c = conns[id]
  if not c then return end
  S.conn = c
  local f = on_message
  if f then f({ type = kind == BINARY and "binary" or "text", data = data, finish = true }, c) end
end
