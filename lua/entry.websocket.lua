-- Chat room: the default entry of a `websocket` server.
--   {"op":"join","room_id":1002}  joins room:1002 (leaving the previous room)
--   {"op":"send","msg":"hi"}      publishes {"client_id":...,"msg":"hi"} to the room
--   {"op":"quit"}                 leaves the room
--   {"op":"ping"}                 does nothing: a heartbeat for clients that cannot send WebSocket pings
--                                 (browsers), so readTimeout does not close them
-- Every request is answered with {"status":"success"} or {"status":"error","msg":...}.

-- What connmix's own entry files start with, and so what its docs' examples assume when they replace
-- on_message here: print that renders tables, and the mix_log/mix_DEBUG shorthands.
require("utils.prettyprint")
local mix_log, mix_DEBUG = mix.log, mix.DEBUG

function on_handshake(client_id, headers, server)
end

local function reply(conn, status, msg)
  conn:send(mix.json_encode({ status = status, msg = msg }))
end

function on_message(msg)
  local conn = mix.websocket()
  if msg.type ~= "text" then return reply(conn, "error", "text frames only") end
  local data, err = mix.json_decode(msg.data)
  if not data then return reply(conn, "error", "invalid json: " .. tostring(err)) end

  local room = conn:context_value("room")
  if data.op == "join" then
    if room then conn:unsubscribe(room) end
    room = "room:" .. tostring(data.room_id)
    local sub_err = conn:subscribe(room)
    if sub_err then return reply(conn, "error", sub_err) end
    conn:set_context_value("room", room)
  elseif data.op == "send" then
    if not room then return reply(conn, "error", "join a room first") end
    mix.mesh.publish(room, mix.json_encode({ client_id = conn:client_id(), msg = data.msg }))
  elseif data.op == "quit" then
    if room then conn:unsubscribe(room) end
    conn:set_context_value("room", nil)
  elseif data.op ~= "ping" then
    return reply(conn, "error", "unknown op: " .. tostring(data.op))
  end
  reply(conn, "success")
end

function on_close(client_id, err)
end
