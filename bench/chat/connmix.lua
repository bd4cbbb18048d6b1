-- The Lua-heavy benchmark's script (bench/chat.ts), the logic of lua/entry.websocket.lua: every frame is
-- decoded, a table is built and encoded, published to the sender's room, and answered.
--   {"op":"join"}              joins the next room, round robin (ROOMS rooms)
--   {"op":"send","msg":"hi"}   publishes {"client_id":...,"msg":"hi"} to the room, answers {"status":"success"}
local ROOMS = 10
local joined = 0

function on_message(msg, conn)
  local data = mix.json_decode(msg.data)
  if not data then return conn:send(mix.json_encode({ status = "error" })) end
  local room = conn:context_value("room")
  if data.op == "join" then
    joined = joined + 1
    room = "room:" .. joined % ROOMS
    conn:subscribe(room)
    conn:set_context_value("room", room)
  elseif data.op == "send" and room then
    mix.mesh.publish(room, mix.json_encode({ client_id = conn:client_id(), msg = data.msg }))
  end
  conn:send(mix.json_encode({ status = "success" }))
end
