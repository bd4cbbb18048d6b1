-- mix.http.request(method, url[, options]) -> resp, err: an HTTP request as a blocking op (http.ts). Only the
-- calling connection waits; the others keep being served.
local F = ...
local mix, block = F.mix, F.block

local OPTION_TYPES = { query = "string", body = "string", cookies = "table", headers = "table", auth = "table" }

-- Response header names arrive lowercase; this lets scripts look them up in any case.
local HEADERS = {
  __index = function(t, k)
    if type(k) == "string" then return rawget(t, k:lower()) end
  end,
}

mix.http = {}

function mix.http.request(method, url, options)
  -- Waiting needs a callback's coroutine; the entry's load and protocol_encode run without one.
  if not coroutine.running() then return nil, "mix.http.request can only wait inside a callback" end
  if type(method) ~= "string" or method == "" then return nil, "http method must be a non-empty string" end
  if type(url) ~= "string" or url == "" then return nil, "http url must be a non-empty string" end
  if options ~= nil and type(options) ~= "table" then
    return nil, "http options must be a table, got " .. type(options)
  end
  for k, v in pairs(options or {}) do
    local t = type(v)
    if k == "timeout" then
      if t ~= "number" and t ~= "string" then
        return nil, 'http option timeout must be seconds or a duration such as "500ms", got ' .. t
      end
    elseif not OPTION_TYPES[k] then
      return nil, "unknown http option: " .. tostring(k)
    elseif t ~= OPTION_TYPES[k] then
      return nil, "http option " .. k .. " must be a " .. OPTION_TYPES[k] .. ", got " .. t
    end
  end
  local resp, err = block("http.request", method, url, options)
  if resp then setmetatable(resp.headers, HEADERS) end
  return resp, err
end
