// `connmix test` as a user runs it: the shipped case files pass; a script using mix.redis, mix.http,
// on_handshake refusals, closes and failing callbacks is checked against canned answers; a wrong
// expectation fails with file:line, exit status 1 and a JUnit report; bad input is a clear error.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir, writeTree } from "../helpers/files.ts";
import { BUN, MAIN, ROOT } from "../helpers/process.ts";

async function connmixTest(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([BUN, MAIN, "test", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, out, err };
}

const examples = readdirSync(join(ROOT, "examples")).filter((d) => existsSync(join(ROOT, "examples", d, "entry.lua")));
const SHIPPED = [
  ["lua/entry.websocket.lua", "lua/entry.websocket.test.yaml"],
  ["lua/entry.socket.lua", "lua/entry.socket.test.yaml"],
  ...examples.map((d) => [`examples/${d}/entry.lua`, `examples/${d}/entry.test.yaml`]),
];

describe("shipped case files", () => {
  test("every example with an entry script has a case file", () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const [, cases] of SHIPPED) expect(existsSync(join(ROOT, cases!))).toBe(true);
  });

  for (const [entry, cases] of SHIPPED) {
    test(`${entry} passes ${cases}`, async () => {
      const junit = join(tempDir("junit"), "report.xml");
      const r = await connmixTest(entry!, cases!, "--junit", junit);
      expect(r.out).toMatch(/^[1-9]\d* passed, 0 failed$/m);
      expect(r.out).not.toContain("FAIL");
      expect(r.code).toBe(0);
      const xml = readFileSync(junit, "utf8");
      expect(xml).toContain('failures="0"');
      expect(xml.match(/<testcase /g)!.length).toBe(Number(r.out.match(/^(\d+) passed/m)![1]));
    });
  }
});

const ENTRY = `
local r = mix.redis.connection()
function on_handshake(id, headers, server)
  if headers["Authorization"] ~= "Bearer ok" then return false, 401, "who are you" end
  conn = mix.websocket()
  conn:set_context_value("path", server.RequestUri)
end
function on_message(msg, conn)
  local cmd, arg = msg.data:match("^(%S+) ?(.*)$")
  if cmd == "get" then
    local v, err = r:command("GET", arg)
    conn:send(tostring(v) .. " " .. tostring(err))
  elseif cmd == "fetch" then
    local resp, err = mix.http.request("GET", "http://api.test/items", { query = "id=" .. arg })
    if not resp then return conn:send("error " .. err) end
    conn:send(resp.status_code .. " " .. resp.headers["Content-Type"] .. " " .. resp.body)
  elseif cmd == "bye" then
    conn:send("bye")
    conn:close()
  elseif cmd == "boom" then
    error("kaboom")
  elseif cmd == "spin" then
    while true do end
  end
end
function on_close(id, err)
  mix.log(mix.INFO, "closed " .. string.format("%d", id))
end
`;

const CASES = `server:
  callbackTimeout: 50
redis:
  - { command: [GET, "user:1"], reply: alice }
  - { command: [GET, "user:2"], reply: null }
  - { command: [GET, "bad"], reply: { error: "WRONGTYPE Operation against a key" } }
http:
  - url: "http://api.test/items?id=7"
    headers: { Content-Type: application/json }
    response: { id: 7 }
  - { url: "http://api.test/items?id=0", error: "timeout after 30s" }
cases:
  - name: canned redis and http answers
    steps:
      - open: { a: { headers: { Authorization: "Bearer ok" }, path: "/chat?x=1" } }
      - context: { a: { path: "/chat?x=1" } }
      - send: { a: "get user:1" }
      - recv: { a: "alice nil" }
      - send: { a: "get user:2" }
      - recv: { a: "nil nil" }
      - send: { a: "get bad" }
      - recv: { a: "nil WRONGTYPE Operation against a key" }
      - send: { a: "fetch 7" }
      - recv: { a: '200 application/json {"id":7}' }
      - send: { a: "fetch 0" }
      - recv: { a: "error timeout after 30s" }
  - name: refused handshake, failing callbacks, close
    steps:
      - open: { x: {}, a: { headers: { Authorization: "Bearer ok" } } }
      - refused: { x: 401 }
      - send: { a: boom }
      - logged: "lua callback error: .*kaboom"
      - send: { a: spin }
      - logged: "callback exceeded its time budget of 50 ms"
      - send: { a: bye }
      - recv: { a: bye }
      - closed: a
      - logged: "closed {{a}}"
`;

describe("a script with redis, http, refusals and errors", () => {
  const dir = writeTree({ "entry.lua": ENTRY, "cases.yaml": CASES });

  test("passes its cases", async () => {
    const r = await connmixTest(join(dir, "entry.lua"), join(dir, "cases.yaml"));
    expect(r.out).toContain("2 passed, 0 failed");
    expect(r.code).toBe(0);
  });

  test("a wrong expectation fails with file:line, the case's log, exit 1 and a JUnit failure", async () => {
    const bad = join(dir, "bad.yaml");
    await Bun.write(bad, CASES.replace('recv: { a: "nil nil" }', 'recv: { a: "bob nil" }').replace("closed: a", "closed: { a: 1011 }"));
    const junit = join(dir, "bad.xml");
    const r = await connmixTest(join(dir, "entry.lua"), bad, "--junit", junit);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`  FAIL  canned redis and http answers`);
    expect(r.out).toContain(`${bad}:20: recv a: expected 'bob nil'\n          got 'nil nil'`);
    expect(r.out).toContain(`${bad}:37: closed a: expected code 1011, got 1000`);
    expect(r.out).toMatch(/log \(\d+ lines\):\n( {10}.*\n)*? {10}.*ERROR\t.*kaboom/);
    expect(r.out).toContain("0 passed, 2 failed");
    const xml = readFileSync(junit, "utf8");
    expect(xml).toContain('<testsuites name="connmix test" tests="2" failures="2">');
    expect(xml).toContain(`<failure message="${bad}:20: recv a: expected &apos;bob nil&apos;">`);
  });

  test("a request with no canned answer fails the case", async () => {
    const missing = join(dir, "missing.yaml");
    await Bun.write(missing, `cases:\n  - name: unforeseen\n    steps:\n      - open: { a: { headers: { Authorization: "Bearer ok" } } }\n      - send: { a: "get user:9" }\n      - recv: { a: "nil connmix test: no canned reply for GET user:9" }\n`);
    const r = await connmixTest(join(dir, "entry.lua"), missing);
    expect(r.out).toContain(`${missing}:2: the script made a request the case has no canned answer for: redis default: GET user:9`);
    expect(r.code).toBe(1);
  });
});

describe("bad input", () => {
  test("a malformed case file names file:line; a missing entry is named; usage errors exit 2", async () => {
    const dir = tempDir("cases");
    const file = join(dir, "c.yaml");
    await Bun.write(file, "cases:\n  - name: x\n    steps:\n      - open: a\n      - sned: { a: hi }\n");
    const r = await connmixTest("lua/entry.websocket.lua", file);
    expect(r.err).toStartWith(`connmix test: ${file}:5: unknown step sned (`);
    expect(r.code).toBe(1);
    const noEntry = await connmixTest("nope.lua", file);
    expect([noEntry.code, noEntry.err]).toEqual([1, "connmix test: entry script nope.lua not found\n"]);
    const usage = await connmixTest("lua/entry.websocket.lua");
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("test needs an entry script and at least one case file");
  });

  test("an entry that does not compile fails every case with the Lua error", async () => {
    const dir = writeTree({ "entry.lua": "function on_message(\n", "c.yaml": "cases:\n  - name: one\n    steps:\n      - open: a\n" });
    const r = await connmixTest(join(dir, "entry.lua"), join(dir, "c.yaml"));
    expect(r.out).toContain(`${join(dir, "c.yaml")}:2: the entry does not load: ${join(dir, "entry.lua")}:2:`);
    expect(r.code).toBe(1);
  });
});
