-- Newline-delimited text for `socket` servers: one package per line. The "\n" (and a "\r" before it) is
-- removed by decode and added by encode. A line longer than max_line bytes closes the connection.
--
--   local text = require("protocols.text")
--   protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode
--   function on_message(line, conn) text.send(conn, "you said: " .. line) end
local find, sub, byte = string.find, string.sub, string.byte

local M = { max_line = 65535 }

local function too_long(conn, n)
  mix.log(mix.WARN, "client " .. tostring(conn and conn:client_id()) .. " sent a line of more than " .. M.max_line
    .. " bytes (" .. n .. " buffered), closing")
  return -1
end

-- protocol_input: the length of the first line including its "\n"; 0 while no "\n" has arrived; -1 (close)
-- when the line, without its line ending, is longer than max_line.
function M.input(buf, conn)
  local s = buf:tostring()
  local nl = find(s, "\n", 1, true)
  if nl then
    local len = nl - 1
    if byte(s, len) == 13 then len = len - 1 end
    if len > M.max_line then return too_long(conn, nl) end
    return nl
  end
  if #s > M.max_line + 1 then return too_long(conn, #s) end -- + 1: room for a "\r"
  return 0
end

-- protocol_decode: the line without its line ending.
function M.decode(line)
  local n = #line - 1
  if byte(line, n) == 13 then n = n - 1 end
  return sub(line, 1, n)
end

-- protocol_encode: pushed data becomes one line.
function M.encode(data)
  if byte(data, -1) == 10 then return data end
  return data .. "\n"
end

-- Sends one line to conn; returns conn:send's error. send(line) inside a callback sends to its connection.
function M.send(conn, line)
  if line == nil then conn, line = mix.socket.tcp(), conn end
  return conn:send(M.encode(line))
end

return M
