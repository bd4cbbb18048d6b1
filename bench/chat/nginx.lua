-- The Lua-heavy benchmark's logic (bench/chat/connmix.lua) on nginx + LuaJIT (ngx_lua, lua-cjson), one
-- worker. Debian packages no lua-resty-websocket, so this module does the server side of RFC 6455 itself, the
-- way that library does: after the 101 response it takes the raw request socket, reads each frame with
-- cosocket receives and unmasks it with LuaJIT's bit ops; a light thread per client writes its queue.
local bit = require("bit")
local cjson = require("cjson.safe")
local semaphore = require("ngx.semaphore")
local band, bxor, rshift = bit.band, bit.bxor, bit.rshift
local byte, char, concat = string.byte, string.char, table.concat
local ngx = ngx

local ROOMS = 10
local joined, ids = 0, 0
local rooms = {} -- room name -> set of clients

local function frame(payload)
  local n = #payload
  if n < 126 then return char(0x81, n) .. payload end
  return char(0x81, 126, rshift(n, 8), band(n, 255)) .. payload
end

local function push(c, data)
  local q = c.queue
  q[#q + 1] = data
  if #q == 1 then c.ready:post(1) end
end

-- Reads one frame: payload and opcode, or nil on close or error.
local function receive(sock)
  local head, err = sock:receive(2)
  if not head then return nil, err end
  local b1, b2 = byte(head, 1, 2)
  local len = band(b2, 127)
  if len == 126 then
    local ext = sock:receive(2)
    if not ext then return nil end
    local hi, lo = byte(ext, 1, 2)
    len = hi * 256 + lo
  elseif len == 127 then
    return nil, "frame too large"
  end
  local mask = sock:receive(4)
  if not mask then return nil end
  local m1, m2, m3, m4 = byte(mask, 1, 4)
  local keys = { m1, m2, m3, m4 }
  local data = len > 0 and sock:receive(len) or ""
  if not data then return nil end
  local bytes = {}
  for i = 1, len do bytes[i] = char(bxor(byte(data, i), keys[(i - 1) % 4 + 1])) end
  return concat(bytes), band(b1, 15)
end

local function writer(c)
  while not c.closed do
    c.ready:wait(60)
    local q = c.queue
    if #q > 0 then
      c.queue = {}
      if not c.sock:send(q) then break end
    end
  end
end

local function handle(c, payload)
  local data = cjson.decode(payload)
  if not data then return push(c, frame(cjson.encode({ status = "error" }))) end
  if data.op == "join" then
    joined = joined + 1
    c.room = "room:" .. joined % ROOMS
    rooms[c.room] = rooms[c.room] or {}
    rooms[c.room][c] = true
  elseif data.op == "send" and c.room then
    local out = frame(cjson.encode({ client_id = c.id, msg = data.msg }))
    for member in pairs(rooms[c.room]) do push(member, out) end
  end
  push(c, frame(cjson.encode({ status = "success" })))
end

local M = {}

function M.serve()
  local key = ngx.var.http_sec_websocket_key
  if not key then return ngx.exit(400) end
  ngx.status = 101
  ngx.header["Upgrade"] = "websocket"
  ngx.header["Connection"] = "Upgrade"
  ngx.header["Sec-WebSocket-Accept"] = ngx.encode_base64(ngx.sha1_bin(key .. "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"))
  ngx.send_headers()
  ngx.flush(true)
  local sock = ngx.req.socket(true)
  sock:settimeouts(10000, 60000, 600000)
  ids = ids + 1
  local c = { id = ids, sock = sock, queue = {}, ready = semaphore.new(), closed = false }
  local w = ngx.thread.spawn(writer, c)
  while true do
    local payload, op = receive(sock)
    if not payload or op == 8 then break end
    if op == 1 then handle(c, payload) end
  end
  c.closed = true
  if c.room then rooms[c.room][c] = nil end
  c.ready:post(1)
  ngx.thread.wait(w)
end

return M
