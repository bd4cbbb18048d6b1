-- Line chat over raw TCP: the demo entry of a `socket` server (try `nc 127.0.0.1 6791`).
--   /join <room>   joins room:<room>, leaving the previous room
--   /quit          leaves the room
--   /name <name>   sets the name shown to others (default: the client id)
--   anything else  goes to everyone in the room as "<name>: <line>"; outside a room it is echoed back
-- Lines are framed by lua/protocols/text.lua; data pushed by the API or mix.mesh arrives as one line.
-- What connmix's own entry files start with, and so what its docs' examples assume when they replace
-- on_message here: print that renders tables, and the mix_log/mix_DEBUG shorthands.
require("utils.prettyprint")
local mix_log, mix_DEBUG = mix.log, mix.DEBUG

local text = require("protocols.text")
protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode

function on_connect(client_id, conn)
  text.send(conn, "welcome " .. client_id .. ", /join <room> to chat")
end

local function leave(conn)
  local room = conn:context_value("room")
  if room then conn:unsubscribe(room) end
  conn:set_context_value("room", nil)
end

function on_message(line, conn)
  local cmd, arg = line:match("^/(%a+)%s*(.-)%s*$")
  if cmd == "join" and arg ~= "" and not arg:find("%s") then
    leave(conn)
    local err = conn:subscribe("room:" .. arg)
    if err then return text.send(conn, "error: " .. err) end
    conn:set_context_value("room", "room:" .. arg)
    text.send(conn, "joined " .. arg)
  elseif cmd == "quit" then
    leave(conn)
    text.send(conn, "left")
  elseif cmd == "name" and arg ~= "" then
    conn:set_context_value("name", arg)
    text.send(conn, "name " .. arg)
  elseif cmd then
    text.send(conn, "error: unknown command /" .. cmd)
  else
    local room = conn:context_value("room")
    if not room then return text.send(conn, line) end
    local name = conn:context_value("name") or tostring(conn:client_id())
    mix.mesh.publish(room, name .. ": " .. line)
  end
end

function on_close(client_id, err)
end
