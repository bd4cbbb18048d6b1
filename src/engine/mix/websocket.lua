-- Events of `websocket` servers: on_handshake, on_message, on_close (spec 4.1).
local P, mix, block, H = ...
local conns, S, EV = P.conns, P.S, P.EV

local HANDSHAKE, MESSAGE = 20, 21
P.EV.handshake, P.EV.message = HANDSHAKE, MESSAGE

-- info = { addr, headers, server }; the callback may return false[, status[, message]] to refuse.
H[HANDSHAKE] = function(id, info)
  H[EV.open](id, info)
  local c = conns[id]
  S.conn = c
  local f = on_handshake
  local ok, status, message = true, nil, nil
  if f then
    if P.legacy then ok, status, message = f(info.headers, c)
    else ok, status, message = f(id, info.headers, info.server, c) end
  end
  if ok == false then
    conns[id] = nil
    P.handshake_result(id, false, tonumber(status) or 403, message and tostring(message) or "Forbidden")
  else
    P.handshake_result(id, true)
  end
end

-- One message per frame sequence; kind 1 = text, 2 = binary.
H[MESSAGE] = function(id, data, kind)
  local c = conns[id]
  if not c then return end
  S.conn = c
  local f = on_message
  if f then f({ type = kind == 2 and "binary" or "text", data = data, finish = true }, c) end
end
