// engine.luavm.memoryLimit: a Lua state cannot grow past its limit. A callback that tries fails with "not
// enough memory" (logged with its traceback), the state's garbage is collected, and the engine keeps
// serving, however often it happens and wherever inside Lua (or at its boundary with JS) the limit is hit.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestEngine, type TestEngine } from "../api/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { Client } from "../helpers/ws.ts";
import { until } from "../helpers/wait.ts";

afterAll(cleanupAll);
const readLog = captureLog();

const MIB = 1 << 20;
const LIMIT_MIB = 32;

const ENTRY = `
function on_message(msg, conn)
  local d = msg.data
  if d == "rep" then local s = string.rep("x", 8e8) return conn:send(#s) end
  if d == "keep" then
    -- 100 x 1 MiB kept in a global (built by table.concat, which allocates as it goes): the limit stops it
    G = G or {}
    local kib = {}
    for i = 1, 1023 do kib[i] = string.rep("y", 1024) end
    for i = 1, 100 do G[#G + 1] = table.concat(kib) .. i end
    return conn:send("kept all")
  end
  if d == "count" then return conn:send(tostring(G and #G or 0)) end
  if d == "free" then G = nil collectgarbage() return conn:send("freed") end
  if d == "small" then
    -- the limit is hit by the VM's own allocations (table growth, string interning) and inside JS calls
    local t = {}
    for i = 1, 1e8 do t[i] = { i, i, i, i, i, i, i, i, i % 256 == 0 and mix.json_encode({ i }) } end
    return conn:send("never")
  end
  -- the limit is hit inside the C functions json_encode (64 MiB of output) and json_decode (500,000 tables)
  if d == "json_encode" then
    local t, s = {}, string.rep("z", 1024 * 1024)
    for i = 1, 64 do t[i] = s end
    return conn:send(#mix.json_encode(t))
  end
  if d == "json_decode" then return conn:send(#mix.json_decode("[" .. string.rep("[1,2,3],", 5e5) .. "[]]")) end
  conn:send("echo " .. d)
end
`;

let e: TestEngine;
beforeAll(async () => {
  e = await startTestEngine(ENTRY, {
    edit: (cfg) => {
      cfg.engine.luavm.memoryLimit = LIMIT_MIB;
      // Filling 32 MiB takes over the default 1 s budget on a loaded machine; the runaway guard's abort is
      // no out-of-memory error (no collection follows it), so these tests give callbacks 20 s.
      cfg.engine.luavm.callbackTimeout = 20_000;
    },
  });
});
afterAll(() => e.stop());

const vm = () => e.engine.servers[0]!.vm;

test("string.rep(\"x\", 8e8) fails in milliseconds with a logged error; the others are served meanwhile", async () => {
  const c = await Client.open(e.chatUrl);
  const other = await Client.open(e.chatUrl);
  const t0 = performance.now();
  c.send("rep");
  expect(await c.ask("after")).toBe("echo after");
  expect(performance.now() - t0).toBeLessThan(500);
  expect(await other.ask("hi")).toBe("echo hi");
  await until(() => readLog().includes("string.rep of 800000000 bytes"), 3000, "the error in the log");
  expect(readLog()).toMatch(/\tERROR\t[^\t]+\tlua callback error: [^\n]*entry\.lua:4: not enough memory \(string\.rep of 800000000 bytes, memoryLimit 33554432\)\nstack traceback:/);
  expect(vm().memoryBytes()).toBeLessThan(4 * MIB);
  c.close();
  other.close();
});

test("data kept in a global stops at the limit; the process grows by no more than the limit", async () => {
  const c = await Client.open(e.chatUrl);
  Bun.gc(true);
  const rss = process.memoryUsage.rss();
  c.send("keep");
  expect(await c.ask("next")).toBe("echo next"); // "kept all" never comes
  const kept = Number(await c.ask("count"));
  expect(kept).toBeGreaterThan(20);
  expect(kept).toBeLessThan(LIMIT_MIB);
  expect(vm().memoryBytes()).toBeLessThanOrEqual(LIMIT_MIB * MIB);
  expect(process.memoryUsage.rss() - rss).toBeLessThan(2 * LIMIT_MIB * MIB);
  expect(readLog()).toMatch(
    /lua callback error: not enough memory \(this Lua state reached its memoryLimit of 33554432 bytes\)\nstack traceback:\n[^\n]*entry\.lua:10: in function/,
  );
  // Metrics: the state's bytes and its limit.
  const metrics = await (await fetch(`${e.apiUrl}/metrics`)).text();
  const used = Number(/^connmix_engine_lua_memory_bytes\{server="127\.0\.0\.1:\d+",worker="0"\} (\d+)$/m.exec(metrics)?.[1]);
  expect(used).toBeGreaterThan(kept * MIB);
  expect(metrics).toMatch(/^connmix_engine_lua_memory_limit_bytes\{server="127\.0\.0\.1:\d+",worker="0"\} 33554432$/m);
  expect(await c.ask("free")).toBe("freed");
  expect(vm().memoryBytes()).toBeLessThan(4 * MIB);
  c.close();
});

test("out of memory inside json_encode and json_decode (C functions running with the limit on) ends only that callback", async () => {
  const c = await Client.open(e.chatUrl);
  const errorsBefore = vm().scheduler.errors;
  for (const op of ["json_encode", "json_decode", "json_encode", "json_decode"]) {
    c.send(op);
    expect(await c.ask(`after ${op}`, 20000)).toBe(`echo after ${op}`);
  }
  expect(vm().scheduler.errors - errorsBefore).toBe(4);
  for (const f of ["json_encode", "json_decode"]) {
    expect(readLog()).toContain(`lua callback error: not enough memory (this Lua state reached its memoryLimit of 33554432 bytes)\nstack traceback:\n\t[C]: in function '${f}'`);
  }
  expect(vm().memoryBytes()).toBeLessThan(4 * MIB);
  expect(await c.ask("still")).toBe("echo still");
  c.close();
}, 60_000);

test("120 callbacks out of memory, hit inside the VM and around JS calls: the server keeps working", async () => {
  const clients = await Promise.all(Array.from({ length: 4 }, () => Client.open(e.chatUrl)));
  const errorsBefore = vm().scheduler.errors;
  for (let round = 0; round < 30; round++) {
    for (const c of clients) c.send(round % 2 ? "small" : "rep");
    for (const c of clients) expect(await c.ask(`r${round}`, 20000)).toBe(`echo r${round}`);
  }
  expect(vm().scheduler.errors - errorsBefore).toBe(120);
  expect(readLog()).not.toContain("time budget"); // every error was running out of memory
  // Nothing leaked or broke: the state is back near its size, callbacks, sends and closes still run.
  expect(vm().memoryBytes()).toBeLessThan(4 * MIB);
  for (const c of clients) expect(await c.ask("still")).toBe("echo still");
  for (const c of clients) c.close();
  await until(() => e.engine.node.connections.size === 0, 3000, "every connection closed");
  const fresh = await Client.open(e.chatUrl);
  expect(await fresh.ask("new")).toBe("echo new");
  fresh.close();
}, 120_000);
