-- The runtime's own Lua, run once when a VM is created, before any API family and the user's entry.
-- Arguments: P (JS functions), root (the lua/ folder of the entry file), bitop (luaopen_bit, a C function).
local P, root, bitop = ...

package.preload.bit = bitop
package.path = root .. "/?.lua;" .. root .. "/?/init.lua;" .. package.path

-- Files that were loaded as modules, for hot reload: module name -> path.
local module_files = {}
local function find_module(name)
  local path_name = name:gsub("%.", "/")
  for template in package.path:gmatch("[^;]+") do
    local path = template:gsub("%?", path_name)
    local f = io.open(path, "r")
    if f then f:close() return path end
  end
end
-- Lua loaders run in order; this one replaces the stock file searcher so we learn each module's path.
package.loaders[2] = function(name)
  local path = find_module(name)
  if not path then return "\n\tno file for module '" .. name .. "' under " .. root end
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  module_files[name] = path
  return chunk
end

local yield = coroutine.yield
local H = {}            -- event kind -> handler(id, payload, extra)

-- The body of every pooled coroutine: runs one event per resume, then yields nothing (= "done").
local function worker(kind, id, p, x)
  while true do
    H[kind](id, p, x)
    kind, id, p, x = yield()
  end
end

-- Waits for a JS blocking operation; yielding a value (the op name) tells JS this is not "done".
local function block(op, ...)
  return yield(op, ...)
end

local function traceback(co, msg)
  return debug.traceback(co, tostring(msg))
end

mix = {}
return worker, traceback, block, H, module_files
