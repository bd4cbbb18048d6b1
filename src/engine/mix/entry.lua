-- What the engine asks of the entry once it has loaded (src/engine/lua-server.ts): the bytecode of the
-- callbacks whose arguments differ between conventions (src/engine/convention.ts), the convention to use
-- (exported as `legacy`: "1.0.1" passes conn in place of the client id; the event handlers read it), and init().
-- F: see src/lua/family.ts and this family's declaration in entry.ts.
local F = ...
local server = F.server

local convention = { legacy = false } -- the exports
local hooks = {}

local CALLBACKS = { "on_connect", "on_close", "on_handshake" }
function hooks.callback_dumps()
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
function hooks.init()
  local f = rawget(_G, "init")
  if type(f) ~= "function" then return false end
  f()
  return true
end
function hooks.set_convention(c)
  convention.legacy = c == "1.0.1"
  server.convention = c
end

return convention, hooks
