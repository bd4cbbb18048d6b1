-- The mix codec functions: those written in JS (codec.ts) plus str_split, parse_str (PHP), parse_url
-- (Go net/url) and bytes_tostring, which build Lua tables and so cost less in Lua than across the FFI.
local F = ...
local host, mix = F.host, F.mix
local byte, char, find, sub, gsub, match, lower, format, concat, unpack, min =
  string.byte, string.char, string.find, string.sub, string.gsub, string.match, string.lower, string.format,
  table.concat, unpack, math.min

for _, name in ipairs({ "base64_encode", "base64_decode", "md5", "md5_bin", "sha1", "sha1_bin", "php_pack",
  "php_unpack" }) do
  mix[name] = host[name]
end

local function text_arg(v, fn, what)
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" then return nil, format("%s expects %s, got %s", fn, what, type(v)) end
  return v
end

-- Length of the UTF-8 sequence at i, or 1 for a byte that does not start a valid one (as Go's DecodeRune).
local function utf8_length(s, i)
  local c = byte(s, i)
  if c < 0xC2 or c > 0xF4 then return 1 end
  local n, lo, hi = 2, 0x80, 0xBF
  if c >= 0xF0 then
    n = 4
    if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
  elseif c >= 0xE0 then
    n = 3
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
  end
  local c2 = byte(s, i + 1)
  if not c2 or c2 < lo or c2 > hi then return 1 end
  for j = i + 2, i + n - 1 do
    local cj = byte(s, j)
    if not cj or cj < 0x80 or cj > 0xBF then return 1 end
  end
  return n
end

-- Plain (not pattern) separator; an empty separator splits into UTF-8 characters, like Go's strings.Split.
function mix.str_split(s, sep)
  local err
  s, err = text_arg(s, "str_split", "a string")
  if not s then return nil, err end
  sep, err = text_arg(sep, "str_split", "a separator string")
  if not sep then return nil, err end
  local parts, n, i = {}, 0, 1
  if sep == "" then
    while i <= #s do
      local size = utf8_length(s, i)
      n = n + 1
      parts[n] = sub(s, i, i + size - 1)
      i = i + size
    end
    return parts
  end
  while true do
    local a, b = find(s, sep, i, true)
    if not a then break end
    n = n + 1
    parts[n] = sub(s, i, a - 1)
    i = b + 1
  end
  parts[n + 1] = sub(s, i)
  return parts
end

function mix.bytes_tostring(t)
  if type(t) ~= "table" then return nil, "bytes_tostring expects a table, got " .. type(t) end
  local parts = {}
  for i = 1, #t, 4096 do -- unpack() of a whole large table would overflow the C stack
    local j = min(i + 4095, #t)
    for k = i, j do
      local b = t[k]
      if type(b) ~= "number" or b < 0 or b > 255 or b % 1 ~= 0 then
        return nil, format("bytes_tostring: element %d is not a byte value (0-255)", k)
      end
    end
    parts[#parts + 1] = char(unpack(t, i, j))
  end
  return concat(parts)
end

local function hex_byte(h) return char(tonumber(h, 16)) end

-- ---------------------------------------------------------------- parse_str (PHP)

local MAX_VARS, MAX_NESTING = 1000, 64 -- PHP's max_input_vars and max_input_nesting_level defaults

-- PHP array keys: a canonical decimal integer is an integer key (up to 15 digits, exact as a Lua number).
local function php_key(k)
  if k == "0" or (#k <= 16 and find(k, "^%-?[1-9]%d*$") and #match(k, "%d+") <= 15) then return tonumber(k) end
  return k
end

-- php_url_decode: '+' is a space, %XX a byte, any other '%' stays.
local function urldecode(s)
  return (gsub(gsub(s, "+", " "), "%%(%x%x)", hex_byte))
end

-- PHP's php_register_variable_ex: "a[b][]" names a path of keys; set(t, nil, v) appends.
local function register(result, set, var, value)
  var = match(var, "^ *([^%z]*)") -- leading spaces are dropped; the name ends at a NUL byte
  local open = find(var, "[", 1, true)
  local base = gsub(sub(var, 1, open and open - 1 or -1), "[ .]", "_")
  -- PHP drops names its mangling turned into a cookie prefix they did not have
  for _, prefix in ipairs({ "__Host-", "__Secure-" }) do
    if sub(base, 1, #prefix) == prefix and sub(var, 1, #prefix) ~= prefix then return end
  end
  if base == "" then return end
  local t, key = result, php_key(base)
  local at, nest = open, 0
  while at do
    nest = nest + 1
    if nest > MAX_NESTING then
      result[php_key(base)] = nil
      return
    end
    local index_at = at + 1
    local close = find(var, "]", index_at, true)
    if not close then
      -- an unclosed '[' is not an index: on the first level it becomes part of the name
      if nest == 1 then key = php_key(base .. "_" .. gsub(sub(var, index_at), "[ .%[]", "_")) end
      break
    end
    local index = nil -- "[]" (or "[ ]") appends
    if not find(var, "^%s?%]", index_at) then index = php_key(sub(var, index_at, close - 1)) end
    local inner = key ~= nil and t[key] or nil
    if type(inner) ~= "table" then
      inner = {}
      set(t, key, inner)
    end
    t, key = inner, index
    at = byte(var, close + 1) == 91 and close + 1 or nil -- anything after "]" but "[" is ignored
  end
  set(t, key, value)
end

function mix.parse_str(query)
  local err
  query, err = text_arg(query, "parse_str", "a string")
  if not query then return nil, err end
  local result, next_free, count = {}, {}, 0
  -- [] appends after the largest integer key, starting at 1 (PHP starts at 0) so that lists are sequences
  local function set(t, k, v)
    if k == nil then k = next_free[t] or 1 end
    if type(k) == "number" and k >= (next_free[t] or 1) then next_free[t] = k + 1 end
    t[k] = v
  end
  for pair in query:gmatch("[^&]+") do
    count = count + 1
    if count > MAX_VARS then break end
    local eq = find(pair, "=", 1, true)
    local value = eq and urldecode(sub(pair, eq + 1)) or ""
    register(result, set, urldecode(eq and sub(pair, 1, eq - 1) or pair), value)
  end
  return result
end

-- ---------------------------------------------------------------- parse_url (Go net/url)

local function quote(s) -- Go's %q, enough for error messages
  return '"' .. gsub(s, '[%c"\\]', function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    return format("\\x%02x", byte(c))
  end) .. '"'
end

local HOST_OK, RESERVED = {}, {}
for c in ("!$&'()*+,;=:[]<>\""):gmatch(".") do HOST_OK[byte(c)] = true end
for c in ("$&+,/:;=?@"):gmatch(".") do RESERVED[byte(c)] = true end

-- Go's shouldEscape for the modes "path", "host", "zone", "userpass", "query" and "fragment".
local function should_escape(c, mode)
  if (c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122) then return false end
  if (mode == "host" or mode == "zone") and HOST_OK[c] then return false end
  if c == 45 or c == 95 or c == 46 or c == 126 then return false end -- - _ . ~
  if RESERVED[c] then
    if mode == "path" then return c == 63 end
    if mode == "userpass" then return c == 64 or c == 47 or c == 63 or c == 58 end
    if mode == "query" then return true end
    if mode == "fragment" then return false end
  end
  if mode == "fragment" and (c == 33 or c == 40 or c == 41 or c == 42) then return false end
  return true
end

local function escape(s, mode)
  return (gsub(s, ".", function(ch)
    local c = byte(ch)
    if not should_escape(c, mode) then return nil end
    if c == 32 and mode == "query" then return "+" end
    return format("%%%02X", c)
  end))
end

local function unescape(s, mode)
  local i = 1
  while i <= #s do
    local c = byte(s, i)
    if c == 37 then
      local seq = sub(s, i, i + 2)
      local bad = not find(seq, "^%%%x%x$")
        or (mode == "host" and tonumber(sub(seq, 2, 2), 16) < 8 and seq ~= "%25")
        or (mode == "zone" and seq ~= "%25" and seq ~= "%20" and should_escape(tonumber(sub(seq, 2), 16), "host"))
      if bad then return nil, "invalid URL escape " .. quote(seq) end
      i = i + 3
    else
      if (mode == "host" or mode == "zone") and c < 0x80 and should_escape(c, mode) then
        return nil, format("invalid character %s in host name", quote(char(c)))
      end
      i = i + 1
    end
  end
  if mode == "query" then s = gsub(s, "+", " ") end
  return (gsub(s, "%%(%x%x)", hex_byte))
end

local function valid_port(p) return p == "" or find(p, "^:%d*$") ~= nil end

local function parse_host(host)
  if sub(host, 1, 1) == "[" then
    local inside = match(host, "^(.*)%]") -- up to the last ']'
    if not inside then return nil, "missing ']' in host" end
    local port = sub(host, #inside + 2)
    if not valid_port(port) then return nil, format("invalid port %s after host", quote(port)) end
    local zone = find(inside, "%25", 1, true)
    if zone then
      local h1, e1 = unescape(sub(inside, 1, zone - 1), "host")
      local h2, e2 = unescape(sub(inside, zone), "zone")
      local h3, e3 = unescape(sub(host, #inside + 1), "host")
      if not (h1 and h2 and h3) then return nil, e1 or e2 or e3 end
      return h1 .. h2 .. h3
    end
  else
    local port = match(host, ".*(:.*)$")
    if port and not valid_port(port) then return nil, format("invalid port %s after host", quote(port)) end
  end
  return unescape(host, "host")
end

-- user is Go's Userinfo.String(): "name" or "name:password", escaped again.
local function parse_authority(authority)
  local userinfo, hostport = match(authority, "^(.*)@(.*)$")
  local host, err = parse_host(hostport or authority)
  if not host then return nil, nil, err end
  if not userinfo then return "", host end
  if find(userinfo, "[^%w%-%._:~!%$&'%(%)%*%+,;=%%@]") then return nil, nil, "net/url: invalid userinfo" end
  local name, password = match(userinfo, "^([^:]*):(.*)$")
  local user, e1 = unescape(name or userinfo, "userpass")
  if not user then return nil, nil, e1 end
  user = escape(user, "userpass")
  if password then
    local pass, e2 = unescape(password, "userpass")
    if not pass then return nil, nil, e2 end
    user = user .. ":" .. escape(pass, "userpass")
  end
  return user, host
end

-- url.Values, first value of each key (Values.Get); malformed pairs are skipped as URL.Query() does.
local function parse_query(raw)
  local query = {}
  for pair in (raw .. "&"):gmatch("([^&]*)&") do
    if pair ~= "" and not find(pair, ";", 1, true) then
      local k, v = match(pair, "^([^=]*)=?(.*)$")
      k, v = unescape(k, "query"), unescape(v, "query")
      if k and v and query[k] == nil then query[k] = v end
    end
  end
  return query
end

local function parse(raw)
  local u = { scheme = "", opaque = "", user = "", host = "", path = "", raw_path = "", force_query = false,
    raw_query = "", fragment = "", raw_fragment = "" }
  if find(raw, "[%z\1-\31\127]") then return nil, "net/url: invalid control character in URL" end
  if raw == "*" then
    u.path = "*"
    return u
  end
  local scheme, rest = match(raw, "^(%a[%w+%-.]*):(.*)$")
  if not scheme then
    if find(raw, "^:") then return nil, "missing protocol scheme" end
    rest = raw
  end
  u.scheme = lower(scheme or "")
  if sub(rest, -1) == "?" and not find(sub(rest, 1, -2), "?", 1, true) then
    u.force_query, rest = true, sub(rest, 1, -2)
  else
    local q = find(rest, "?", 1, true)
    if q then rest, u.raw_query = sub(rest, 1, q - 1), sub(rest, q + 1) end
  end
  if sub(rest, 1, 1) ~= "/" then
    if u.scheme ~= "" then -- rootless paths are opaque (RFC 3986)
      u.opaque = rest
      return u
    end
    if find(match(rest, "^[^/]*"), ":", 1, true) then return nil, "first path segment in URL cannot contain colon" end
  end
  if (u.scheme ~= "" or sub(rest, 1, 3) ~= "///") and sub(rest, 1, 2) == "//" then
    local authority, path = match(rest, "^//([^/]*)(.*)$")
    local err
    u.user, u.host, err = parse_authority(authority)
    if not u.user then return nil, err end
    rest = path
  end
  local path, err = unescape(rest, "path")
  if not path then return nil, err end
  u.path = path
  if escape(path, "path") ~= rest then u.raw_path = rest end
  return u
end

function mix.parse_url(url)
  local err
  url, err = text_arg(url, "parse_url", "a string")
  if not url then return nil, err end
  local before, fragment = match(url, "^([^#]*)#(.*)$")
  before = before or url
  local u
  u, err = parse(before)
  if not u then return nil, format("parse %s: %s", quote(before), err) end
  if fragment and fragment ~= "" then
    u.fragment, err = unescape(fragment, "fragment")
    if not u.fragment then return nil, format("parse %s: %s", quote(url), err) end
    if escape(u.fragment, "fragment") ~= fragment then u.raw_fragment = fragment end
  end
  u.query = parse_query(u.raw_query)
  return u
end

-- The name some connmix docs gave it (docs/compatibility.md).
mix.url_parse = mix.parse_url
