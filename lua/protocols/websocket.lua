-- RFC 6455 WebSocket written in Lua for `socket` servers: the HTTP upgrade (only on the server's `path`
-- option, "/" when unset), client-masked frames, fragmented messages reassembled, ping answered with pong,
-- the close handshake, and messages capped at max_payload bytes (close 1009 beyond). An entry using it
-- looks like a `websocket` entry:
--
--   local websocket = require("protocols.websocket")
--   protocol_input, protocol_decode, protocol_encode = websocket.input, websocket.decode, websocket.encode
--   function on_handshake(client_id, headers, server, conn) end  -- optional; false[, status, message] refuses
--   function on_message(msg, conn)                                -- msg = { type = "text"|"binary", data, finish }
--     websocket.send(conn, "echo: " .. msg.data, msg.type)
--   end
--   function on_close(client_id, err, conn) print(websocket.close_code(conn)) end
--
-- Use websocket.send (not conn:send, which writes raw bytes) to reply. Data pushed by mix.mesh or the API
-- goes through websocket.encode and arrives as one text or binary frame, as the sender asked.
-- Text payloads are not checked for valid UTF-8.
--
-- The calling styles of connmix's own module are accepted too (docs/compatibility.md):
--   1.0.1: protocol_input(buf, conn) return websocket.input(buf, conn, "/chat", on_handshake) end
--          (uri prefix instead of the path option; on_handshake(headers, conn)), websocket.decode(conn)
--          (ping, pong and close frames reach on_message too), websocket.encode(str),
--          websocket.send_text(conn, data), websocket.send_binary(conn, data)
--   docs:  websocket.input(buf, on_handshake), websocket.decode(str), websocket.send_text(data)
-- Either way the request headers are kept in the connection context as "headers".
local bit = require("bit")
local band, bxor = bit.band, bit.bxor
local byte, char, sub, find, lower, upper = string.byte, string.char, string.sub, string.find, string.lower, string.upper
local concat, floor, min = table.concat, math.floor, math.min

local M = { max_payload = 65535, max_header = 8192 }

local GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
local TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
local STATUS = { [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [426] = "Upgrade Required", [500] = "Internal Server Error" }

-- Per connection: { open, closing, kind, parts, size, early, close_code, style, uri, on_handshake, keep, pkg }.
-- Weak keys: a closed connection's state goes with its conn object.
local states = setmetatable({}, { __mode = "k" })

local function state(conn)
  local st = states[conn]
  if not st then st = {} states[conn] = st end
  return st
end

-- A connection object (a table; the other arguments in its place are strings, callbacks or nil): how the
-- calling styles are told apart, with one type() per call on the per-frame path.
local function is_conn(x)
  return type(x) == "table"
end

-- One unmasked server frame with FIN set.
local function frame(op, data)
  local n = #data
  if n < 126 then return char(0x80 + op, n) .. data end
  if n < 65536 then return char(0x80 + op, 126, floor(n / 256), n % 256) .. data end
  return char(0x80 + op, 127, 0, 0, 0, 0, floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256) .. data
end

-- XOR[k][x] = x XOR k, built per key byte on first use: a table lookup is cheaper than a call to bit.bxor.
local XOR = setmetatable({}, { __index = function(xor, k)
  local t = {}
  for x = 0, 255 do t[x] = bxor(x, k) end
  xor[k] = t
  return t
end })

-- XORs s[at..] with the 4-byte key, CHUNK bytes at a time (a multiple of 4, so each chunk starts at key
-- byte 1), four bytes per step.
local CHUNK = 4096
local function unmask(s, at, key)
  local last = #s
  if at > last then return "" end
  local k1, k2, k3, k4 = byte(key, 1, 4)
  local x1, x2, x3, x4 = XOR[k1], XOR[k2], XOR[k3], XOR[k4]
  local parts = {}
  for from = at, last, CHUNK do
    local b = { byte(s, from, min(from + CHUNK - 1, last)) }
    local n = #b
    local i = 1
    while i + 3 <= n do
      b[i], b[i + 1], b[i + 2], b[i + 3] = x1[b[i]], x2[b[i + 1]], x3[b[i + 2]], x4[b[i + 3]]
      i = i + 4
    end
    if i <= n then b[i] = x1[b[i]] end
    if i + 1 <= n then b[i + 1] = x2[b[i + 1]] end
    if i + 2 <= n then b[i + 2] = x3[b[i + 2]] end
    parts[#parts + 1] = char(unpack(b))
  end
  return #parts == 1 and parts[1] or concat(parts)
end

local function close_frame(code, reason)
  return frame(CLOSE, char(floor(code / 256), code % 256) .. (reason or ""))
end

-- Sends a close frame (once) and closes the connection; later bytes from the client are ignored.
local function fail(conn, code, reason)
  local st = state(conn)
  if not st.closing then
    st.closing = true
    if st.open then conn:send(close_frame(code, reason)) end
    conn:close()
  end
  return nil
end

local function http_error(conn, status, message, extra)
  message = message or STATUS[status] or "Error"
  conn:send("HTTP/1.1 " .. status .. " " .. (STATUS[status] or "Error") .. "\r\nContent-Type: text/plain\r\n"
    .. (extra or "") .. "Content-Length: " .. #message .. "\r\nConnection: close\r\n\r\n" .. message)
  state(conn).closing = true
  conn:close()
  return nil
end

-- Go-style canonical header names (Sec-Websocket-Key), as a `websocket` server gives on_handshake.
local function canonical(name)
  return (("-" .. lower(name)):gsub("%-(%l)", function(c) return "-" .. upper(c) end):sub(2))
end

-- on_handshake as the style asks: 1.0.1 passes (headers, conn); the docs' style and ours pass the
-- arguments of the entry's convention.
local function call_handshake(st, conn, headers, server)
  local f = st.on_handshake
  if st.style == "1.0.1" then
    if f then return f(headers, conn) end
    return nil
  end
  if st.style ~= "docs" then f = on_handshake end
  if not f then return nil end
  if mix.server.convention == "1.0.1" then return f(headers, conn) end
  return f(conn:client_id(), headers, server, conn)
end

local function handshake(request, conn, st)
  local method, uri, version = request:match("^(%u+) (%S+) (HTTP/1%.%d)\r\n")
  if not method then return http_error(conn, 400, "malformed HTTP request") end
  local headers, low = {}, {}
  local legacy = st.style == "1.0.1"
  if legacy then headers.Method, headers.RequestUri, headers.ServerProtocol = method, uri, version end
  for name, value in request:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[canonical(name)] = value
    if legacy then headers[name] = value end -- 1.0.1 kept the names as sent
    low[lower(name)] = value
  end
  if method ~= "GET" then return http_error(conn, 405) end
  if st.uri then
    if sub(uri, 1, #st.uri) ~= st.uri then return http_error(conn, 404, "not found") end
  elseif uri:match("^[^?#]*") ~= (mix.server.option("path") or "/") then
    return http_error(conn, 404, "not found")
  end
  if not find(lower(low.upgrade or ""), "websocket", 1, true) then
    return http_error(conn, 426, "websocket upgrade required")
  end
  if low["sec-websocket-version"] ~= "13" then
    return http_error(conn, 426, "unsupported websocket version", "Sec-WebSocket-Version: 13\r\n")
  end
  local key = low["sec-websocket-key"]
  if not key or #key ~= 24 then return http_error(conn, 400, "missing or invalid Sec-WebSocket-Key") end

  conn:set_context_value("headers", headers)
  local server = { Method = method, RequestUri = uri, ServerProtocol = "HTTP/1.1", Host = low.host or "",
    RemoteAddr = conn:remote_addr() }
  local ok, status, message = call_handshake(st, conn, headers, server)
  if ok == false then return http_error(conn, tonumber(status) or 403, message and tostring(message)) end
  conn:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
    .. mix.base64_encode(mix.sha1_bin(key .. GUID)) .. "\r\n\r\n")
  st.open = true
  -- Frames websocket.send queued during on_handshake go after the 101 response.
  if st.early then
    for i = 1, #st.early do conn:send(st.early[i]) end
    st.early = nil
  end
  return nil
end

-- The length of the HTTP request (0 while incomplete); on the first call, notes the calling style.
local function request_length(s, conn, st, a, uri, hs)
  if not st.style then
    if not is_conn(a) then st.style, st.on_handshake = "docs", a
    elseif type(uri) == "string" then st.style, st.uri, st.on_handshake, st.keep = "1.0.1", uri, hs, true
    else st.style = "ours" end
  end
  local e = find(s, "\r\n\r\n", 1, true)
  if e then return e + 3 end
  if #s > M.max_header then return http_error(conn, 400, "request header too large") or -1 end
  return 0
end

-- protocol_input: the length of the HTTP request, then of each complete frame; -1 closes. Styles:
-- input(buf, conn) ours, input(buf, conn, uri[, on_handshake]) 1.0.1, input(buf[, on_handshake]) docs.
-- In the 1.0.1 style (st.keep) the package is kept for decode(conn), which is not given it.
function M.input(buf, a, uri, hs)
  local conn = a
  if type(a) ~= "table" then conn = mix.socket.tcp() end
  local st = state(conn)
  if st.closing then return -1 end
  local s = buf:tostring()
  if not st.open then
    local n = request_length(s, conn, st, a, uri, hs)
    if st.keep and n > 0 then st.pkg = sub(s, 1, n) end
    return n
  end
  local have = #s
  if have < 2 then return 0 end
  local b2 = byte(s, 2)
  local len, at = band(b2, 127), 2
  if len == 126 then
    if have < 4 then return 0 end
    len, at = byte(s, 3) * 256 + byte(s, 4), 4
  elseif len == 127 then
    if have < 10 then return 0 end
    local b3, b4, b5, b6, b7, b8, b9, b10 = byte(s, 3, 10)
    if b3 + b4 + b5 + b6 > 0 then return fail(conn, 1009, "message too big") or -1 end
    len, at = ((b7 * 256 + b8) * 256 + b9) * 256 + b10, 10
  end
  if len > M.max_payload then return fail(conn, 1009, "message too big") or -1 end
  if band(b2, 0x80) ~= 0 then at = at + 4 end
  if have < at + len then return 0 end
  if st.keep then st.pkg = sub(s, 1, at + len) end
  return at + len
end

-- What decode gives on_message for a control frame: nothing in our style; the frame in 1.0.1's.
local function control(st, kind, data)
  if st.style == "1.0.1" then return { type = kind, data = data, finish = true } end
  return nil
end

-- protocol_decode: completes the handshake, answers control frames, and returns a message table for a
-- complete text or binary message. decode(pkg, conn) ours, decode(conn) 1.0.1, decode(pkg) docs.
function M.decode(pkg, conn)
  if type(pkg) == "table" then conn, pkg = pkg, nil
  elseif conn == nil then conn = mix.socket.tcp() end
  local st = state(conn)
  if pkg == nil then pkg, st.pkg = st.pkg, nil end
  if st.closing or pkg == nil then return nil end
  if not st.open then return handshake(pkg, conn, st) end
  local b1, b2 = byte(pkg, 1, 2)
  if band(b1, 0x70) ~= 0 then return fail(conn, 1002, "reserved bits set") end
  if band(b2, 0x80) == 0 then return fail(conn, 1002, "client frames must be masked") end
  local fin, op, n = band(b1, 0x80) ~= 0, band(b1, 0x0f), band(b2, 127)
  local at = n == 126 and 5 or n == 127 and 11 or 3
  local data = unmask(pkg, at + 4, sub(pkg, at, at + 3))

  if op >= CLOSE then
    if not fin or #data > 125 then return fail(conn, 1002, "invalid control frame") end
    if op == PING then
      conn:send(frame(PONG, data))
      return control(st, "ping", data)
    elseif op == CLOSE then
      -- Echo the client's code (RFC 6455 5.5.1) and close.
      local code = #data >= 2 and byte(data, 1) * 256 + byte(data, 2) or nil
      st.close_code = code
      local valid = code and code >= 1000 and code < 5000 and code ~= 1005 and code ~= 1006 and code ~= 1015
      fail(conn, valid and code or 1000, "")
      return control(st, "close", code and code .. "," .. sub(data, 3) or "")
    elseif op == PONG then
      return control(st, "pong", data)
    end
    return fail(conn, 1002, "unknown opcode " .. op)
  end

  if op == TEXT or op == BINARY then
    if st.kind then return fail(conn, 1002, "new message before the end of a fragmented one") end
    if fin then return { type = op == TEXT and "text" or "binary", data = data, finish = true } end
    st.kind, st.parts, st.size = op, { data }, #data
    return nil
  end
  if op ~= 0 then return fail(conn, 1002, "unknown opcode " .. op) end
  if not st.kind then return fail(conn, 1002, "continuation frame without a message") end
  st.size = st.size + #data
  if st.size > M.max_payload then return fail(conn, 1009, "message too big") end
  st.parts[#st.parts + 1] = data
  if not fin then return nil end
  local msg = { type = st.kind == TEXT and "text" or "binary", data = concat(st.parts), finish = true }
  st.kind, st.parts, st.size = nil, nil, nil
  return msg
end

-- protocol_encode: data pushed by mix.mesh or the API becomes one frame of the type the sender asked.
-- Nothing can be pushed before the handshake completed (the push reports a send error).
function M.encode(data, conn, kind)
  local st = conn and states[conn]
  if conn and not (st and st.open and not st.closing) then return nil end
  return frame(kind == "binary" and BINARY or TEXT, data)
end

-- Sends one message (type "text", the default, or "binary"); returns conn:send's error.
function M.send(conn, data, kind)
  local f = frame(kind == "binary" and BINARY or TEXT, tostring(data))
  local st = state(conn)
  if st.closing then return "connection closed" end
  if not st.open then
    st.early = st.early or {}
    st.early[#st.early + 1] = f
    return nil
  end
  return conn:send(f)
end

-- send_text(conn, data) / send_binary(conn, data) (1.0.1), or send_text(data) in a callback (docs):
-- true, or nil and the error.
local function sender(kind)
  return function(a, b)
    local conn, data = a, b
    if not is_conn(a) then conn, data = mix.socket.tcp(), a end
    if not conn then return nil, "not inside a socket callback" end
    local err = M.send(conn, data, kind)
    if err then return nil, err end
    return true, nil
  end
end
M.send_text, M.send_binary = sender("text"), sender("binary")

-- Starts the close handshake with a code (default 1000) and reason, then closes the connection.
function M.close(conn, code, reason)
  fail(conn, code or 1000, reason)
end

-- The close code the client sent, if it sent a close frame.
function M.close_code(conn)
  local st = states[conn]
  return st and st.close_code
end

return M
