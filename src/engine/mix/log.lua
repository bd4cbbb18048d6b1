-- mix.log and its levels, and print routed to the engine's stdout (Lua's own C stdout is block-buffered
-- when not a terminal, so its output would appear late and out of order with the log).
local F = ...
local host, mix = F.host, F.mix
mix.DEBUG, mix.INFO, mix.WARN, mix.ERROR = "debug", "info", "warn", "error"
local LEVELS = { debug = true, info = true, warn = true, error = true }
local getinfo, concat, tostring, select = debug.getinfo, table.concat, tostring, select

-- Returns true when the line was written, false when the level is below the log level (b in the docs),
-- and false plus the error for a bad level.
mix.log = function(level, msg)
  if not LEVELS[level] then return false, "invalid log level: " .. tostring(level) end
  if not host.log_enabled(level) then return false end
  local where = getinfo(2, "Sl")
  local caller = where and (where.short_src:match("[^/]*/?[^/]+$") .. ":" .. (where.currentline or 0)) or "?"
  host.log(level, tostring(msg), caller)
  return true
end

function print(...)
  local n = select("#", ...)
  local parts = { ... }
  for i = 1, n do parts[i] = tostring(parts[i]) end
  host.print(concat(parts, "\t", 1, n))
end

-- Exports, for the families that log (socket).
return { log = mix.log }
