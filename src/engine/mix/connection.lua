-- The connection object (spec: conn:*), the per-connection registry and mix.websocket()/mix.socket.tcp().
-- F: see src/lua/family.ts and this family's declaration in connection.ts.
local F = ...
local host, mix, block, H, S, EV, TYPE, entry = F.host, F.mix, F.block, F.H, F.S, F.EV, F.TYPE, F.entry
local MAX_CHANNEL_BYTES = F.MAX_CHANNEL_BYTES
local send = host.send

local conns = {}                                   -- client id -> conn

local Conn = {}
Conn.__index = Conn

local function channels_of(...)
  local list = { ... }
  if #list == 0 then return nil, "no channel given" end
  for i = 1, #list do
    local ch = list[i]
    if type(ch) ~= "string" or ch == "" or ch:find("%s") then
      return nil, "invalid channel name: " .. tostring(ch)
    end
    if #ch > MAX_CHANNEL_BYTES then
      return nil, "channel name too long: " .. #ch .. " bytes (at most " .. MAX_CHANNEL_BYTES .. ")"
    end
  end
  return list
end

function Conn:client_id() return self.id end
function Conn:remote_addr() return self.addr end
function Conn:context() return self.ctx end
function Conn:context_value(k) return self.ctx[k] end

-- self.waiting counts the callbacks in wait_context_value on this connection (its own, or another
-- connection's holding this conn object); self.changes counts the context changes they could see. Both are
-- nil (0) until a wait: most connections never wait, and two fields fewer keep each idle one smaller.
local function changed(self)
  if (self.waiting or 0) > 0 then
    self.changes = (self.changes or 0) + 1
    host.wake(self.id)
  end
end

function Conn:set_context(tb)
  if type(tb) ~= "table" then return "set_context expects a table, got " .. type(tb) end
  self.ctx = tb
  changed(self)
end

function Conn:set_context_value(k, v)
  if k == nil then return "set_context_value expects a key" end
  self.ctx[k] = v
  changed(self)
end

-- Blocks this connection's callback until context key k is set (locally or through the API).
function Conn:wait_context_value(k)
  while true do
    local v = self.ctx[k]
    if v ~= nil then return v end
    if self.closed then return nil, "connection closed" end
    local seen = self.changes or 0
    self.waiting = (self.waiting or 0) + 1
    block("connection.wait", self.id)
    self.waiting = self.waiting - 1
    -- Only a context change counts; a wait that ends without one ended because the connection closed
    -- (its on_close waits behind this callback, so self.closed is not set yet).
    if (self.changes or 0) == seen then
      self.closed = true
      return nil, "connection closed"
    end
  end
end

function Conn:subscribe(...)
  local list, err = channels_of(...)
  if not list then return err end
  return host.subscribe(self.id, unpack(list))
end

function Conn:unsubscribe(...)
  local list, err = channels_of(...)
  if not list then return err end
  return host.unsubscribe(self.id, unpack(list))
end

function Conn:close()
  if self.closed then return "connection closed" end
  return host.close(self.id)
end

-- Hot path: the data type and a closed connection are checked on the JS side.
function Conn:send(data, t)
  local kind = TYPE[t or self.default_type]
  if not kind then return "invalid message type: " .. tostring(t) end
  return send(self.id, data, kind)
end

-- Events shared by every protocol. The protocol families add theirs to H.
H[EV.open] = function(id, info)
  conns[id] = setmetatable({ id = id, addr = info.addr, ctx = {}, default_type = info.binary and "binary" or "text" }, Conn)
end

-- The engine passes the reason as the event's extra value (the payload slot is unused).
H[EV.close] = function(id, _, err)
  local c = conns[id]
  if not c then return end
  c.closed = true
  S.conn = c
  local f = on_close
  conns[id] = nil
  if not f then return end
  if entry.legacy then f(err, c) else f(id, err, c) end
end

-- The hooks JS calls (contract.ts), returned below.
local hooks = {}

-- The engine refused or failed an upgrade after on_handshake made the connection object: drop it.
function hooks.forget(id) conns[id] = nil end

-- A callback failed, so its worker did not restore S.conn: give it back to the callback it interrupted
-- (id nil: none), so mix.websocket() stays right and the failed connection is not kept alive.
function hooks.failed(id) S.conn = id and conns[id] end

-- Runs a connection method on behalf of the API (conn.call): f is the method name, args a list.
-- Context changes release a pending wait_context_value.
function hooks.conn_call(id, f, args)
  local c = conns[id]
  if not c then return "client not found" end
  local allowed = { set_context_value = true, set_context = true, subscribe = true, unsubscribe = true }
  if not allowed[f] then return "unsupported method: " .. tostring(f) end
  return Conn[f](c, unpack(args or {}))
end

-- The context table of a connection, for tools that show it (connmix test, the console); nil when unknown.
function hooks.context(id)
  local c = conns[id]
  return c and c.ctx
end

mix.websocket = function()
  local c = S.conn
  if not c or c.socket then return nil, "not inside a websocket callback" end
  return c
end
mix.socket = {
  tcp = function()
    local c = S.conn
    if not c or not c.socket then return nil, "not inside a socket callback" end
    return c
  end,
}

-- Exports, for the protocol families (websocket.lua, socket.lua), and the hooks.
return { conns = conns }, hooks
