// Websocket Lua servers started with startLuaServers on free loopback ports. The default entry runs each
// text frame as a Lua chunk inside on_message and answers with the chunk's return values as JSON; strings
// are escaped byte by byte (\u00XX outside printable ASCII), so `bytes()` recovers them exactly.
import type { RedisConfig } from "../../src/config/index.ts";
import { startEngine, type Started } from "../helpers/engine.ts";
import type { Client } from "../helpers/ws.ts";

const ENTRY = String.raw`
local function enc(v)
  local t = type(v)
  if v == nil then return "null"
  elseif t == "boolean" or t == "number" then return tostring(v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\\128-\255]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t ~= "table" then return '"<' .. t .. '>"' end
  local n, keys, seq = 0, {}, true
  for k in pairs(v) do
    keys[#keys + 1] = k
    if type(k) == "number" and k >= 1 and k % 1 == 0 then n = math.max(n, k) else seq = false end
  end
  local out = {}
  if seq then
    for i = 1, n do out[i] = enc(v[i]) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do out[i] = enc(tostring(k)) .. ":" .. enc(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

local function results(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = enc((select(i, ...))) end
  return "[" .. table.concat(out, ",") .. "]"
end

function on_message(msg, conn)
  local f, err = loadstring(msg.data, "=chunk")
  if not f then return conn:send(results(nil, err)) end
  conn:send(results(f()))
end
`;

/** The exact bytes of a string the entry sent. */
export const bytes = (s: string) => Buffer.from(s, "latin1");

export interface ServerOptions {
  /** Entry source text or the path of an entry file; default: the eval entry. */
  entry?: string;
  redis?: RedisConfig[];
  /** Server `options` besides path (which is /eval). */
  options?: Record<string, string>;
}

/** One websocket Lua server on a free loopback port, at /eval. */
export function startServer(opts: ServerOptions = {}): Promise<Started> {
  return startEngine(opts.entry ?? ENTRY, {
    server: { options: Object.entries({ ...opts.options, path: "/eval" }).map(([name, value]) => ({ name, value })) },
    edit: (config) => {
      config.engine.luavm.redis = opts.redis ?? [];
    },
  });
}

/** Runs `code` (a Lua chunk) in the eval entry's on_message over `c` and returns the chunk's results. */
export async function evalLua(c: Client, code: string): Promise<any[]> {
  return JSON.parse(await c.ask(code, 10_000));
}
