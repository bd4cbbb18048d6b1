// A real Lua state with the json and codec families, and `check(code)`: runs a chunk of Lua assertions
// and fails the test with the Lua error. The entry defines helpers for the chunks:
//   eq(actual, expected[, label])  deep equality, message shows both sides
//   hex(s)                         the bytes of s as lowercase hex
//   fails(v, err, pattern)         v is nil and err is a string matching pattern
//   count(t)                       number of keys (pairs)
import { expect } from "bun:test";
import { join } from "node:path";
import { LuaVM } from "../../src/lua/vm";
import { logging } from "../../src/engine/mix/log";
import { json } from "../../src/engine/mix/json";
import { codec } from "../../src/engine/mix/codec";
import { writeTree } from "./files.ts";

const ENTRY = String.raw`
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = "[" .. show(k) .. "]=" .. show(v[k]) end
  return "{" .. table.concat(out, ", ") .. "}"
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

function eq(actual, expected, label)
  if not same(actual, expected) then
    error((label and label .. ": " or "") .. "expected " .. show(expected) .. ", got " .. show(actual), 2)
  end
end

function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

function fails(v, err, pattern)
  if v ~= nil or type(err) ~= "string" or not err:find(pattern) then
    error("expected nil and an error matching '" .. pattern .. "', got " .. show(v) .. ", " .. show(err), 2)
  end
end

function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end

function check(code)
  local f, err = loadstring(code, "=check")
  if not f then return err end
  local ok, e = pcall(f)
  return ok and "ok" or tostring(e)
end
`;

export function codecVM(): (code: string) => void {
  const vm = new LuaVM({ entry: join(writeTree({ "entry.lua": ENTRY }), "entry.lua"), families: [logging, json, codec], budgetMs: 20_000, host: undefined });
  return (code: string) => expect(vm.callGlobal("check", [code])).toBe("ok");
}
