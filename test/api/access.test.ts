// Access control (spec §8, docs/security.md) on the engine API over real HTTP and WebSocket upgrades: no
// credentials, wrong password, read-only user, writer, a user whose host glob does not match 127.0.0.1 (the
// same 401 as a wrong password), failed logins limited per IP and logged escaped, and a hot change of the
// `access` section through the watched config file. Origins: origin.test.ts; protected mode: protected.test.ts.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HotConfig, loadConfig, watchConfig } from "../../src/config/index.ts";
import { startLuaServers } from "../../src/engine/servers.ts";
import { startApiServer } from "../../src/api/server.ts";
import { hostPattern } from "../../src/access/access.ts";
import { postJson } from "../helpers/http.ts";
import { captureLog } from "../helpers/log.ts";
import { freePort } from "../helpers/ports.ts";
import { Client } from "../helpers/ws.ts";
import { basic, upgradeStatus, useTestEngine } from "./helpers";

const USERS = [
  { username: "reader", password: "r-pass", roles: ["read" as const], host: "*" },
  { username: "writer", password: "w-pass", roles: ["read" as const, "write" as const], host: "127.0.0.*" },
  { username: "faraway", password: "f-pass", roles: ["read" as const, "write" as const], host: "10.*.*.*" },
];

// The failed logins these tests make on purpose stay below the limit, tested on an engine of its own below.
const e = useTestEngine("function on_message(msg) end", { users: USERS, logins: { maxFailures: 1000 } });

/** [GET /metrics, POST /v1/mesh/publish, /ws/v1 upgrade] statuses for these headers. */
async function matrix(headers: Record<string, string>): Promise<number[]> {
  const metrics = await fetch(`${e.apiUrl}/metrics`, { headers });
  const publish = await postJson(`${e.apiUrl}/v1/mesh/publish`, { c: "room", d: "x" }, headers);
  return [metrics.status, publish.status, await upgradeStatus(e.api.port, "/ws/v1", headers)];
}

describe("access control", () => {
  test("no credentials: 401 with a Basic challenge", async () => {
    const r = await fetch(`${e.apiUrl}/metrics`);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Basic realm="connmix", charset="UTF-8"');
    expect(await r.text()).toBe("unauthorized: missing or wrong username, password or host\n");
    expect(await matrix({})).toEqual([401, 401, 401]);
  });

  test("wrong password or unknown user: 401", async () => {
    expect(await matrix(basic("writer", "nope"))).toEqual([401, 401, 401]);
    expect(await matrix(basic("nobody", "w-pass"))).toEqual([401, 401, 401]);
    expect(await matrix({ authorization: "Bearer abc" })).toEqual([401, 401, 401]);
  });

  test("read role: GETs only; POSTs and /ws/v1 are 403", async () => {
    expect(await matrix(basic("reader", "r-pass"))).toEqual([200, 403, 403]);
    const r = await postJson(`${e.apiUrl}/v1/mesh/publish`, { c: "room", d: "x" }, basic("reader", "r-pass"));
    expect(r.body).toBe("forbidden: user reader does not have the write role\n");
  });

  test("write role from a matching host: everything, and /ws/v1 works", async () => {
    expect(await matrix(basic("writer", "w-pass"))).toEqual([200, 200, 101]);
    const api = await Client.open(e.apiWs, { headers: basic("writer", "w-pass") });
    expect(await api.call("mesh.publish", { c: "room", d: "x" }, 1)).toEqual({ E: null, r: { s: 0, f: 0 }, i: 1 });
    api.close();
  });

  // Issue 14: this was 403 for the right password and 401 for a wrong one, an oracle for the password.
  test("right password from a host the glob does not match: the same 401 as a wrong password", async () => {
    expect(await matrix(basic("faraway", "f-pass"))).toEqual([401, 401, 401]);
    const right = await fetch(`${e.apiUrl}/metrics`, { headers: basic("faraway", "f-pass") });
    const wrong = await fetch(`${e.apiUrl}/metrics`, { headers: basic("faraway", "guess") });
    const seen = async (r: Response) => [r.status, await r.text(), [...r.headers].filter(([k]) => k !== "date").sort()];
    expect(await seen(right)).toEqual(await seen(wrong));
  });

  test("host globs", () => {
    expect(hostPattern("*").test("192.168.1.20")).toBe(true);
    expect(hostPattern("172.*.*.*").test("172.16.0.1")).toBe(true);
    expect(hostPattern("172.*.*.*").test("10.172.0.1")).toBe(false);
    expect(hostPattern("10.0.0.1").test("10.0.0.10")).toBe(false);
    expect(hostPattern("10.0.0.1").test("10a0b0c1")).toBe(false);
    // Bun reports IPv6 addresses in lower case; a glob written in upper case still matches them.
    expect(hostPattern("FE80::*").test("fe80::1")).toBe(true);
    expect(hostPattern("2001:DB8::1").test("2001:db8::1")).toBe(true);
  });
});

// Issue 14: failed logins were not limited (nor logged), so a password could be guessed at full speed.
describe("failed logins", () => {
  const limited = useTestEngine("function on_message(msg) end", { users: USERS });

  test("are logged with their values escaped; past 10 from one IP within a minute, every login from it is 429", async () => {
    const read = captureLog();
    const forged = "evil\nFORGED\tINFO\tforged line\u0000"; // no ':' (Basic credentials split there)
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await fetch(`${limited.apiUrl}/metrics`, { headers: basic(i === 0 ? forged : "writer", `guess-${i}`) });
      statuses.push(r.status);
    }
    expect(statuses).toEqual(Array(10).fill(401));
    // The right password now gets the same 429 as a wrong one: the lockout answers nothing about guesses.
    for (const [user, password] of [["writer", "w-pass"], ["writer", "guess-11"]]) {
      const r = await fetch(`${limited.apiUrl}/metrics`, { headers: basic(user!, password!) });
      expect(r.status).toBe(429);
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await r.text()).toBe("too many failed logins from this address\n");
    }
    expect(await upgradeStatus(limited.api.port, "/ws/v1", basic("writer", "w-pass"))).toBe(429);
    const lines = read().split("\n");
    const failures = lines.filter((l) => l.includes("engine API: failed login from 127.0.0.1"));
    expect(failures).toHaveLength(10);
    expect(failures[0]).toContain('(user "evil\\nFORGED\\tINFO\\tforged line\\x00"), 1 in 0s');
    expect(lines.some((l) => l.startsWith("FORGED"))).toBe(false);
    expect(lines.filter((l) => l.includes("10 failed logins from 127.0.0.1; its logins are refused (429)"))).toHaveLength(1);
  });
});

test("a change of `access` in the watched file applies at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "connmix-access-"));
  writeFileSync(join(dir, "entry.lua"), "function on_message(msg) end\n");
  const [luaPort, apiPort] = [freePort(), freePort()];
  const yaml = (users: string) => `
access:
  users: ${users}
engine:
  apiServer: { bind: 127.0.0.1, port: ${apiPort} }
  servers:
    - { port: ${luaPort}, bind: 127.0.0.1, protocol: websocket, entry: ${join(dir, "entry.lua")}, byteCodeExpires: 0 }
`;
  const file = join(dir, "connmix.yaml");
  writeFileSync(file, yaml("[]"));
  const config = loadConfig(file, { mode: "engine" });
  const hot = new HotConfig();
  const engine = await startLuaServers(config, 1, 0, { hot });
  const api = await startApiServer(config, engine.node, { hot });
  const watcher = watchConfig(file, config, hot, { pollMs: 50, debounceMs: 20 });
  const metrics = (headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers }).then((r) => r.status);
  // The status the server settles on within 5 s.
  const settled = async (want: number) => {
    let status = await metrics();
    for (let i = 0; i < 100 && status !== want; i++) {
      await Bun.sleep(50);
      status = await metrics();
    }
    return status;
  };
  try {
    expect(await metrics()).toBe(200);
    writeFileSync(file, yaml(`[{ username: ops, password: s3cret, roles: [read], host: "*" }]`));
    expect(await settled(401)).toBe(401);
    expect(await metrics(basic("ops", "s3cret"))).toBe(200);
    writeFileSync(file, yaml("[]"));
    expect(await settled(200)).toBe(200);
  } finally {
    watcher.close();
    await api.stop();
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
