-- require("utils.prettyprint") makes print render tables readably, one `"key" = value` per line:
--
--   {
--   	"path" = "/chat"
--   	"query" = [table: 0x5581e0c0]
--   	{
--   		"foo" = "bar"
--   	}
--   }
--
-- Keys are sorted (numbers first) so the output is stable; a table met again (a cycle or a shared table)
-- is shown by address only. Other values print as with the plain print; mix.null prints as null.
local print_plain, tostring, type, pairs, sort, concat, format, gsub, select =
  print, tostring, type, pairs, table.sort, table.concat, string.format, string.gsub, select

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
  return '"' .. gsub(s, '[%c"\\]', function(c) return ESCAPES[c] or format("\\%03d", c:byte()) end) .. '"'
end

local function scalar(v)
  if type(v) == "string" then return quote(v) end
  if mix and v == mix.null then return "null" end
  return tostring(v)
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" or (ta == "string" and tb ~= "number") end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function render(t, indent, seen, out)
  seen[t] = true
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  if #keys == 0 then
    out[#out + 1] = indent .. "{}"
    return
  end
  sort(keys, key_order)
  out[#out + 1] = indent .. "{"
  local inner = indent .. "\t"
  for _, k in ipairs(keys) do
    local v = t[k]
    local name = type(k) == "string" and quote(k) or "[" .. scalar(k) .. "]"
    if type(v) == "table" then
      out[#out + 1] = inner .. name .. " = [" .. tostring(v) .. "]"
      if not seen[v] then render(v, inner, seen, out) end
    else
      out[#out + 1] = inner .. name .. " = " .. scalar(v)
    end
  end
  out[#out + 1] = indent .. "}"
end

function print(...)
  local n = select("#", ...)
  local parts = { ... }
  for i = 1, n do
    local v = parts[i]
    if type(v) == "table" then
      local out = {}
      render(v, "", {}, out)
      parts[i] = concat(out, "\n")
    else
      parts[i] = tostring(v)
    end
  end
  print_plain(concat(parts, "\t", 1, n))
end

return print
