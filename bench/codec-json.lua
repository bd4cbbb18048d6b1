-- The pure-Lua alternative to mix.json_encode/json_decode, measured by bench/codec-json.ts: string.find
-- patterns for whitespace, plain strings and numbers, table.concat for output. Not used by the product.
local byte, sub, find, gsub, format, concat, tonumber, type, pairs, next, floor, huge =
  string.byte, string.sub, string.find, string.gsub, string.format, table.concat, tonumber, type, pairs, next, math.floor, math.huge
local M = {}
local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
for i = 0, 31 do local c = string.char(i) if not ESC[c] then ESC[c] = format("\\u%04x", i) end end
ESC["\127"] = "\127"
local function estr(s)
  if find(s, '[%c"\\]') then s = gsub(s, '[%c"\\]', ESC) end
  return '"' .. s .. '"'
end
local enc
local function enum(v)
  if v ~= v or v == huge or v == -huge then error("cannot encode " .. tostring(v)) end
  if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
  local s = format("%.14g", v)
  if tonumber(s) ~= v then s = format("%.17g", v) end
  return s
end
enc = function(v, buf, n, depth)
  local t = type(v)
  if t == "string" then n = n + 1 buf[n] = estr(v)
  elseif t == "number" then n = n + 1 buf[n] = enum(v)
  elseif t == "boolean" then n = n + 1 buf[n] = v and "true" or "false"
  elseif t == "nil" then n = n + 1 buf[n] = "null"
  elseif t == "table" then
    if depth > 1000 then error("too deep") end
    local len = #v
    local count = 0
    for _ in next, v do count = count + 1 end
    if count == 0 then n = n + 1 buf[n] = "[]"
    elseif count == len then
      n = n + 1 buf[n] = "["
      for i = 1, len do
        if i > 1 then n = n + 1 buf[n] = "," end
        n = enc(v[i], buf, n, depth + 1)
      end
      n = n + 1 buf[n] = "]"
    else
      n = n + 1 buf[n] = "{"
      local first = true
      for k, x in next, v do
        local kt = type(k)
        if kt == "number" then k = enum(k) elseif kt ~= "string" then error("bad key") end
        n = n + 1 buf[n] = first and "" or ","
        first = false
        n = n + 1 buf[n] = estr(k)
        n = n + 1 buf[n] = ":"
        n = enc(x, buf, n, depth + 1)
      end
      n = n + 1 buf[n] = "}"
    end
  else error("cannot encode " .. t) end
  return n
end
function M.encode(v)
  local buf = {}
  local ok, n = pcall(enc, v, buf, 0, 0)
  if not ok then return nil, n end
  return concat(buf, "", 1, n)
end

local UNESC = { [34] = '"', [92] = '\\', [47] = '/', [98] = '\b', [102] = '\f', [110] = '\n', [114] = '\r', [116] = '\t' }
local function utf8(cp)
  if cp < 0x80 then return string.char(cp)
  elseif cp < 0x800 then return string.char(0xC0 + floor(cp / 64), 0x80 + cp % 64)
  elseif cp < 0x10000 then return string.char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  else return string.char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64) end
end
local function skip(s, i)
  local _, e = find(s, "^[ \n\r\t]*", i)
  return e + 1
end
local function dstr(s, i)
  local _, e, body = find(s, '^"([^"\\%c]*)"', i)
  if e then return body, e + 1 end
  local parts, np, j = {}, 0, i + 1
  while true do
    local _, b, chunk = find(s, '^([^"\\%c]*)', j)
    np = np + 1 parts[np] = chunk
    j = b + 1
    local c = byte(s, j)
    if c == 34 then return concat(parts), j + 1 end
    if c ~= 92 then error("bad string at " .. j) end
    local x = byte(s, j + 1)
    if x == 117 then
      local cp = tonumber(sub(s, j + 2, j + 5), 16)
      if not cp then error("bad \\u") end
      np = np + 1 parts[np] = utf8(cp)
      j = j + 6
    else
      local u = UNESC[x]
      if not u then error("bad escape") end
      np = np + 1 parts[np] = u
      j = j + 2
    end
  end
end
local NULL = {}
local dval
dval = function(s, i)
  i = skip(s, i)
  local c = byte(s, i)
  if c == 123 then
    local t = {}
    i = skip(s, i + 1)
    if byte(s, i) == 125 then return t, i + 1 end
    while true do
      if byte(s, i) ~= 34 then error("expected key at " .. i) end
      local k, v
      k, i = dstr(s, i)
      i = skip(s, i)
      if byte(s, i) ~= 58 then error("expected : at " .. i) end
      v, i = dval(s, i + 1)
      if v ~= NULL then t[k] = v end
      i = skip(s, i)
      c = byte(s, i)
      if c == 125 then return t, i + 1 end
      if c ~= 44 then error("expected , at " .. i) end
      i = skip(s, i + 1)
    end
  elseif c == 91 then
    local t, n = {}, 0
    i = skip(s, i + 1)
    if byte(s, i) == 93 then return t, i + 1 end
    while true do
      local v
      v, i = dval(s, i)
      n = n + 1 t[n] = v
      i = skip(s, i)
      c = byte(s, i)
      if c == 93 then return t, i + 1 end
      if c ~= 44 then error("expected , at " .. i) end
      i = i + 1
    end
  elseif c == 34 then return dstr(s, i)
  elseif c == 116 and sub(s, i, i + 3) == "true" then return true, i + 4
  elseif c == 102 and sub(s, i, i + 4) == "false" then return false, i + 5
  elseif c == 110 and sub(s, i, i + 3) == "null" then return NULL, i + 4
  else
    local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not a then error("bad value at " .. i) end
    return tonumber(sub(s, a, b)), b + 1
  end
end
function M.decode(s)
  local ok, v, i = pcall(dval, s, 1)
  if not ok then return nil, v end
  return v
end
return M
