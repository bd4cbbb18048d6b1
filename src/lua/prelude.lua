-- The runtime's own Lua, run once when a VM is created, before any family and the user's entry.
-- Arguments: root (the lua/ folder of the entry file), bitop (luaopen_bit, a C function), memory_limit
-- (bytes the state may hold, 0: none). It returns what the VM keeps (the worker body and adopt, traceback,
-- module files) and what it hands to the families' chunks (block, H, S, mix; see src/lua/family.ts).
local root, bitop, memory_limit = ...

package.preload.bit = bitop
-- root/utils/?.lua: the 1.0.1 layout had require("prettyprint") where later ones have utils.prettyprint.
package.path = root .. "/?.lua;" .. root .. "/?/init.lua;" .. package.path .. ";" .. root .. "/utils/?.lua"


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

-- string.rep builds its result in C, one piece at a time, where the runaway guard cannot stop it: a
-- result that cannot fit under the memory limit fails at once rather than after seconds of copying.
if memory_limit > 0 then
  local rep, count = string.rep, collectgarbage
  string.rep = function(s, n, ...)
    if type(s) == "string" and type(n) == "number" and #s * n > memory_limit - count("count") * 1024 then
      error(string.format("not enough memory (string.rep of %.0f bytes, memoryLimit %.0f)", #s * n, memory_limit), 2)
    end
    return rep(s, n, ...)
  end
end

local yield = coroutine.yield
local H = {}            -- event kind -> handler(id, payload, extra)
-- State of the running callback. S.conn is the connection it serves (mix.websocket()); handlers set it,
-- and it is restored around nested callbacks and blocking waits, so it is right whenever Lua code runs.
local S = {}

-- Coroutines whose yields reach the scheduler: the pooled workers and the coroutines our pcall makes in them.
local ours = setmetatable({}, { __mode = "k" })
local running = coroutine.running

-- The body of every pooled coroutine, started anew for each event (runtime.c dispatch_event): it returns when
-- the callback is done, which costs less than a loop that yields between events. It leaves S.conn as it found
-- it, for the callback it may have interrupted.
local function worker(kind, id, p, x)
  local outer = S.conn
  H[kind](id, p, x)
  S.conn = outer
end

-- Run once in each new pooled coroutine (Scheduler.take): its yields reach the scheduler.
local function adopt()
  ours[running()] = true
end

local function resumed(conn, ...)
  S.conn = conn
  return ...
end

-- Waits for a JS blocking operation: yields its op name (a string) and arguments, and JS resumes with the results.
-- In a coroutine of the script's own, the yield would reach the script's coroutine.resume instead.
local function block(op, ...)
  local co = running()
  if not ours[co] then
    error(op .. (co and " cannot wait inside a coroutine the script created" or " can only wait inside a callback"), 0)
  end
  return resumed(S.conn, yield(op, ...))
end

-- Lua 5.1 cannot yield across pcall, so a blocking mix call inside pcall would fail. This pcall runs the
-- function in a coroutine and passes its blocking yields up to the scheduler (the coxpcall technique).
local create, resume, status, native_pcall = coroutine.create, coroutine.resume, coroutine.status, pcall
local function finish_pcall(co, ok, ...)
  if not ok then return false, ... end
  if status(co) == "dead" then return true, ... end
  return finish_pcall(co, resume(co, yield(...)))
end
function pcall(f, ...)
  local me = running()
  if not me then return native_pcall(f, ...) end
  local ok, co = native_pcall(create, f)
  -- A C function (require, error, ...) or a callable table cannot be a coroutine body: plain pcall then.
  if not ok then return native_pcall(f, ...) end
  if ours[me] then ours[co] = true end
  return finish_pcall(co, resume(co, ...))
end

-- A script's own coroutine.yield that would reach the scheduler yields nothing (and gets nil back): a yielded
-- string would read as one of block's op names.
function coroutine.yield(...)
  if ours[running()] then return yield() end
  return yield(...)
end

-- A coroutine of ours answers to the scheduler only. A script that kept one (coroutine.running()) and resumed
-- it would run a pooled worker with its own arguments and leave it without its worker for the next event (see
-- worker), or hand a waiting `block` its values.
function coroutine.resume(co, ...)
  if ours[co] then return false, "cannot resume a coroutine that runs connmix callbacks" end
  return resume(co, ...)
end

local function traceback(co, msg)
  return debug.traceback(co, tostring(msg))
end

mix = {}
return worker, adopt, traceback, module_files, block, H, S, mix
