// The Lua runtime: coroutines per callback, per-connection ordering, blocking ops, errors, runaway guard.
import { beforeEach, describe, expect, test } from "bun:test";
import { captureLog } from "../helpers/log.ts";
import { makeVM, owner, recorded, TEST_EVENT } from "../helpers/lua";
import { until } from "../helpers/wait.ts";

const readLog = captureLog();
beforeEach(() => { recorded.length = 0; });

describe("callbacks", () => {
  test("run in order per connection; a blocked one holds back only its own connection", async () => {
    const vm = makeVM(`
      function on_event(id, p)
        if p == "slow" then record(id .. ":slow:" .. sleep_ms(50, "woke")) else record(id .. ":" .. p) end
      end`);
    const a = owner(), b = owner();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "slow");
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "after");
    vm.scheduler.dispatch(b, TEST_EVENT, 2, "b1");
    vm.scheduler.dispatch(b, TEST_EVENT, 2, "b2");
    expect(recorded).toEqual(["2:b1", "2:b2"]);
    await until(() => recorded.length === 4);
    expect(recorded).toEqual(["2:b1", "2:b2", "1:slow:woke", "1:after"]);
  });

  test("blocking calls work inside pcall, and a long backlog drains in order", async () => {
    const vm = makeVM(`
      function on_event(id, p)
        if p == 0 then
          local ok, v = pcall(function() return sleep_ms(10, "inner") end)
          record(tostring(ok) .. ":" .. v)
        else record(p) end
      end`);
    const a = owner();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, 0);
    for (let i = 1; i <= 5000; i++) vm.scheduler.dispatch(a, TEST_EVENT, 1, i);
    await until(() => recorded.length === 5001);
    expect(recorded[0]).toBe("true:inner");
    expect(recorded.slice(1)).toEqual(Array.from({ length: 5000 }, (_, i) => String(i + 1)));
  });

  test("a Lua error is logged with its traceback and the next callback runs", async () => {
    const vm = makeVM(`
      local function deep(p) if p == "bad" then error("boom " .. p) end record(p) end
      function on_event(id, p) deep(p) end`);
    const a = owner();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "bad");
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "good");
    expect(recorded).toEqual(["good"]);
    const text = readLog();
    expect(text).toMatch(/\tERROR\t[^\t]+\tlua callback error: .*entry\.lua:2: boom bad/);
    expect(text).toContain("stack traceback:");
    expect(text).toMatch(/entry\.lua:2: in function 'deep'/);
  });

  test("a runaway callback is stopped after its budget and the VM keeps serving", () => {
    const vm = makeVM(`function on_event(id, p) if p == "loop" then while true do end end record(p) end`, { budgetMs: 50 });
    const a = owner(), b = owner();
    const t0 = performance.now();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "loop");
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(1000);
    vm.scheduler.dispatch(b, TEST_EVENT, 2, "other");
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "same connection");
    expect(recorded).toEqual(["other", "same connection"]);
    expect(readLog()).toContain("callback exceeded its time budget of 50 ms");
  });

  test("a callback that yields in a loop is stopped by the runaway guard; the connection goes on", () => {
    const vm = makeVM(`function on_event(id, p) if p == "loop" then while true do coroutine.yield() end end record(p) end`, { budgetMs: 50 });
    const a = owner();
    const t0 = performance.now();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "loop");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "next");
    expect(recorded).toEqual(["next"]);
    expect(readLog()).toContain("callback exceeded its time budget of 50 ms");
  });

  test("a top-level coroutine.yield in a callback does not confuse the scheduler", () => {
    const vm = makeVM(`function on_event(id, p) local v = coroutine.yield() record("resumed " .. tostring(v)) end`);
    vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "x");
    expect(recorded).toEqual(["resumed nil"]);
  });

  test("a top-level coroutine.yield(true), also inside pcall, is not taken for 'done'; user coroutines keep their values", () => {
    const vm = makeVM(`function on_event(id, p)
      local v = coroutine.yield(true)
      local ok, w = pcall(function() return coroutine.yield(false) end)
      local gen = coroutine.wrap(function() coroutine.yield(true) end)
      local u = coroutine.wrap(function() pcall(function() coroutine.yield(7) end) end)()
      record(p .. " " .. tostring(v) .. " " .. tostring(w) .. " " .. tostring(gen()) .. " " .. tostring(u))
    end`);
    const a = owner();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "x");
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "y");
    expect(recorded).toEqual(["x nil nil true 7", "y nil nil true 7"]);
  });

  // A pooled coroutine holds only its worker between events, which each event starts: a script that kept one
  // (coroutine.running()) and resumed it later would run the worker itself and leave the coroutine without it,
  // so the next event given that coroutine (another client's) would be lost. Such a resume is refused.
  test("a script cannot resume a coroutine callbacks run in; the events after it are delivered", async () => {
    const vm = makeVM(`function on_event(id, p)
      if p == "save" then saved = coroutine.running() return end
      if p == "hold" then
        sleep_ms(20)
        local ok, err = coroutine.resume(saved, ${TEST_EVENT}, 99, "bogus", 0)
        record(tostring(ok) .. " " .. tostring(err))
        sleep_ms(100) -- keeps this coroutine busy: the next event gets the saved one
        return
      end
      record(p)
    end`);
    vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "hold", 0); // numbers as extra: the fast path, dispatch_event
    vm.scheduler.dispatch(owner(), TEST_EVENT, 2, "save", 0);
    await until(() => recorded.some((r) => /^(true|false) /.test(r)), 3000, "the resume");
    vm.scheduler.dispatch(owner(), TEST_EVENT, 3, "after", 0);
    expect(recorded).toEqual(["false cannot resume a coroutine that runs connmix callbacks", "after"]);
    expect(vm.scheduler.errors).toBe(0);
  });

  test("a blocking call inside a coroutine the script made is a clear error, not a garbage result", () => {
    const vm = makeVM(`function on_event(id, p)
      local ok, err = pcall(coroutine.wrap(function() return sleep_ms(1, "v") end))
      record(tostring(ok) .. " " .. tostring(err))
    end`);
    vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "x");
    expect(recorded).toEqual(["false test.sleep cannot wait inside a coroutine the script created"]);
  });

  test("pcall of a C function (require, error, tostring) in a callback works as Lua's own", () => {
    const vm = makeVM(`function on_event(id, p)
      local a, m = pcall(require, "string")
      local b, e = pcall(error, "oops", 0)
      local c, s = pcall(tostring, 42)
      record(table.concat({ tostring(a), tostring(m == string), tostring(b), e, tostring(c), s }, " "))
    end`);
    vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "x");
    expect(recorded).toEqual(["true true false oops true 42"]);
  });

  test("strings with NUL bytes and invalid UTF-8 reach Lua unchanged", () => {
    const vm = makeVM(`function on_event(id, p) record(#p .. ":" .. p:byte(1) .. "," .. p:byte(2) .. "," .. p:byte(3)) end`);
    vm.scheduler.dispatch(owner(), TEST_EVENT, 1, new Uint8Array([0, 0xff, 0xc3]));
    expect(recorded).toEqual(["3:0,255,195"]);
  });
});

describe("resources", () => {
  test("a million callbacks leave Lua memory and the coroutine pool flat", () => {
    const vm = makeVM(`local n = 0 function on_event(id, p) n = n + #p end`);
    const owners = Array.from({ length: 100 }, owner);
    const run = (count: number) => { for (let i = 0; i < count; i++) vm.scheduler.dispatch(owners[i % 100], TEST_EVENT, i % 100, "payload"); };
    run(100_000);
    Bun.gc(true);
    const luaBefore = vm.memoryKiB();
    const rssBefore = process.memoryUsage().rss;
    run(1_000_000);
    Bun.gc(true);
    expect(vm.memoryKiB()).toBeLessThan(luaBefore + 512);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(32 * 1024 * 1024);
    expect(vm.scheduler.pooled).toBeLessThanOrEqual(1);
  }, 60_000);
});

describe("payload identity", () => {
  test("a bytes payload with the length of an earlier text payload is read back as its own bytes", () => {
    const vm = makeVM(`function on_event(id, p) record(p) end`);
    const a = owner();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "abc", 0);
    vm.scheduler.dispatch(a, TEST_EVENT, 1, new Uint8Array([120, 121, 122]), 0);
    expect(recorded).toEqual(["abc", "xyz"]);
  });
});

describe("JS functions", () => {
  test("a JS function that throws is logged; the callback goes on and the connection's next event runs", async () => {
    const { logging } = await import("../../src/engine/mix/log");
    const { testFamily } = await import("../helpers/lua");
    const throwing = { name: "throwing", lua: "local F = ...\nexplode = F.host.explode", functions: { explode: () => { throw new Error("kaboom"); } } };
    const vm = makeVM(`function on_event(id, p) local r = explode() record(p .. " after " .. tostring(r)) end`,
      { families: [logging, testFamily, throwing] });
    const a = owner();
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "one");
    vm.scheduler.dispatch(a, TEST_EVENT, 1, "two");
    await until(() => recorded.length === 2);
    expect(recorded).toEqual(["one after nil", "two after nil"]);
    expect(a.busy).toBe(false);
    expect(readLog()).toContain("kaboom");
  });
});
