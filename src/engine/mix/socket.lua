-- Events of `socket` servers (spec 4.2): the script frames the TCP byte stream itself with
-- protocol_input/protocol_decode, and protocol_encode shapes data pushed to the connection.
-- F: see src/lua/family.ts and this family's declaration in connection.ts.
local F = ...
local H, S, EV, TYPE, entry, log = F.H, F.S, F.EV, F.TYPE, F.entry, F.log.log
local conns = F.connection.conns
local sub = string.sub

-- The hooks JS calls (contract.ts), returned at the end.
local hooks = {}
local decoded = 0 -- packages protocol_decode turned into a message (connmix_engine_servers_read_messages_total)
function hooks.decoded() return decoded end
local oversized = 0 -- connections closed by too_much (connmix_engine_servers_dropped_messages_total, too_large)
function hooks.oversized() return oversized end

-- Read-only view of a connection's unconsumed bytes, as passed to protocol_input.
local Buffer = {}
Buffer.__index = Buffer
function Buffer:tostring() return self.s end
function Buffer:length() return #self.s end
function Buffer:position() return self.pos end
-- s, err: err when fewer than n bytes remain (the position does not move).
function Buffer:read(n)
  n = tonumber(n)
  if not n or n < 0 then return nil, "invalid length: " .. tostring(n) end
  if self.pos + n > #self.s then return nil, "not enough bytes" end
  local out = sub(self.s, self.pos + 1, self.pos + n)
  self.pos = self.pos + n
  return out
end


H[EV.connect] = function(id, info)
  H[EV.open](id, info)
  local c = conns[id]
  c.socket = true
  c.buf = "" -- bytes not yet framed into a package
  c.clear_buffer = function(self) self.cleared = true; self.buf = "" end
  S.conn = c
  local f = on_connect
  if not f then return end
  if entry.legacy then f(c) else f(id, c) end
end

local function too_much(c, id, n)
  oversized = oversized + 1
  log("error", "connection " .. id .. " buffered " .. n .. " bytes without a complete package; closing")
  c:close() c.buf = ""
end

-- New bytes arrived: run the framing loop over everything buffered so far. c.buf is updated before the
-- callbacks of each package run, so a callback that fails loses only its own package: the bytes after it
-- stay buffered and are framed when the next bytes arrive. conn:clear_buffer() in any callback drops them.
H[EV.data] = function(id, bytes, limit)
  local c = conns[id]
  if not c then return end
  S.conn = c
  local buf = c.buf == "" and bytes or c.buf .. bytes
  c.buf = buf
  -- Only a callback that failed (protocol_input raised) can have left more than the limit buffered.
  if #buf - #bytes > limit then return too_much(c, id, #buf) end
  while buf ~= "" and not c.closed do
    c.cleared = false
    local n = tonumber(protocol_input(setmetatable({ s = buf, pos = 0 }, Buffer), c)) or 0
    if c.cleared then return end
    if n < 0 then c:close() c.buf = "" return end
    if n == 0 then break end
    -- A fraction or NaN would frame an empty package and leave the buffer as it is, forever.
    if n > #buf or n % 1 ~= 0 then
      local why = n > #buf and " but only " .. #buf .. " bytes are buffered" or ", not a whole byte count"
      log("error", "protocol_input returned " .. n .. why .. "; closing")
      c:close() c.buf = "" return
    end
    local package = sub(buf, 1, n)
    buf = sub(buf, n + 1)
    c.buf = buf
    local msg = package
    if protocol_decode then msg = protocol_decode(package, c) end -- nil skips on_message
    if msg ~= nil then
      decoded = decoded + 1
      if on_message then on_message(msg, c) end
    end
    if c.cleared then return end
  end
  if #buf > limit then too_much(c, id, #buf) end
end

-- Called by the engine (main thread) for data pushed to a socket connection (id is nil for a publish,
-- encoded once for every subscriber); kind is TYPE.text or TYPE.binary, as the sender asked.
function hooks.encode(data, id, kind)
  if not protocol_encode then return data end
  local c = id and conns[id]
  local out = protocol_encode(data, c, kind == TYPE.binary and "binary" or "text")
  if type(out) ~= "string" or out == "" then return nil end
  return out
end

return nil, hooks
