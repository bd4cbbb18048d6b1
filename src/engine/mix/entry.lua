-- What the engine asks of the entry once it has loaded (src/engine/lua-server.ts): the bytecode of the
-- callbacks whose arguments differ between conventions (src/lua/convention.ts), the convention to use
-- (P.legacy: "1.0.1" passes conn in place of the client id; the event handlers read it), and init().
local P, mix = ...

local CALLBACKS = { "on_connect", "on_close", "on_handshake" }
function __connmix_callback_dumps()
  local out = {}
  for _, name in ipairs(CALLBACKS) do
    local f = rawget(_G, name)
    if type(f) == "function" then
      local ok, dump = pcall(string.dump, f)
      if ok then out[name] = dump end
    end
  end
  return out
end
-- A script's init() (1.0.1 scripts create their queues there) runs after each load of the entry.
function __connmix_init()
  local f = rawget(_G, "init")
  if type(f) ~= "function" then return false end
  f()
  return true
end
function __connmix_set_convention(c)
  P.legacy = c == "1.0.1"
  mix.server.convention = c
end

