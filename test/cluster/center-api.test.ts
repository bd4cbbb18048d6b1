// The center API in-process: routes, methods, and access control (spec §8: these are reads).
import { afterAll, expect, test } from "bun:test";
import { defaultConfig } from "../../src/config/schema";
import { startCenterApi } from "../../src/center/http";
import { RegistryServer } from "../../src/center/registry";
import { LINK_TIMINGS } from "../../src/center/protocol";
import { Keys } from "../../src/net/auth";
import { endlessChunkedPost } from "../helpers/http.ts";
import { freePort } from "../helpers/ports.ts";

const config = defaultConfig();
config.center.apiServer = { bind: "127.0.0.1", port: freePort(), tls: null };
config.access.users = [
  { username: "ops", password: "s3cret", roles: ["read"], host: "127.*.*.*" },
  { username: "pusher", password: "p", roles: ["write"], host: "*" },
];
const registry = new RegistryServer({ keys: new Keys([]), tls: null, link: LINK_TIMINGS });
const api = startCenterApi(config, registry);
afterAll(() => api.stop());
const base = `http://127.0.0.1:${config.center.apiServer.port}`;
const auth = (user: string, pass: string) => ({ authorization: `Basic ${btoa(`${user}:${pass}`)}` });

test("a reader gets /version, /v1/nodes and /metrics; others get 401 or 403", async () => {
  const ops = auth("ops", "s3cret");
  expect(await (await fetch(`${base}/version`, { headers: ops })).json()).toEqual({ apis: ["v1"] });
  expect(await (await fetch(`${base}/v1/nodes`, { headers: ops })).json()).toEqual({ nodes: [] });
  const metrics = await fetch(`${base}/metrics`, { headers: ops });
  expect(metrics.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  const text = await metrics.text();
  for (const line of ["connmix_center_registry_channels_total 0", "connmix_center_registry_clients 0", "connmix_center_registry_engine_nodes 0"]) {
    expect(text).toContain(`\n${line}\n`);
  }
  expect((await fetch(`${base}/v1/nodes`)).status).toBe(401);
  expect((await fetch(`${base}/v1/nodes`, { headers: auth("ops", "wrong") })).status).toBe(401);
  expect((await fetch(`${base}/v1/nodes`, { headers: auth("pusher", "p") })).status).toBe(403);
});

test("unknown paths are 404, other methods 405", async () => {
  const ops = auth("ops", "s3cret");
  expect((await fetch(`${base}/v2/nodes`, { headers: ops })).status).toBe(404);
  // A POST needs the write role first; a writer then learns the method is not allowed.
  const post = await fetch(`${base}/v1/nodes`, { method: "POST", headers: auth("pusher", "p") });
  expect([post.status, post.headers.get("allow")]).toEqual([405, "GET"]);
});

// Issue 14: the center API follows the engine's access rules: pages of other origins are refused, and a
// host-restricted user gets the same 401 for the right password as for a wrong one.
test("an Origin not in access.origins is 403 even with credentials; a wrong host is 401", async () => {
  const r = await fetch(`${base}/v1/nodes`, { headers: { ...auth("ops", "s3cret"), origin: "https://evil.example" } });
  expect([r.status, await r.text()]).toEqual([403, "forbidden: origin https://evil.example is not listed in access.origins\n"]);
  const other = defaultConfig();
  other.center.apiServer = { bind: "127.0.0.1", port: freePort(), tls: null };
  other.access.users = [{ username: "far", password: "f", roles: ["read"], host: "10.*" }];
  const far = startCenterApi(other, registry);
  try {
    const url = `http://127.0.0.1:${other.center.apiServer.port}/v1/nodes`;
    expect((await fetch(url, { headers: auth("far", "f") })).status).toBe(401);
    expect((await fetch(url, { headers: auth("far", "x") })).status).toBe(401);
  } finally {
    await far.stop();
  }
});

test("/metrics counts the requests it refused, by reason; the console asking what a reader may do is not one", async () => {
  const ops = auth("ops", "s3cret");
  const reasons = ["origin", "unauthorized", "role", "too_large"];
  const counts = async () => {
    const text = await (await fetch(`${base}/metrics`, { headers: ops })).text();
    return reasons.map((r) => Number(text.match(new RegExp(`^connmix_center_api_refused_requests_total\\{reason="${r}"\\} (\\d+)$`, "m"))?.[1]));
  };
  const before = await counts();
  expect((await fetch(`${base}/v1/nodes`, { headers: { ...ops, origin: "https://evil.example" } })).status).toBe(403);
  expect((await fetch(`${base}/v1/nodes`, { headers: auth("ops", "wrong") })).status).toBe(401);
  expect((await fetch(`${base}/v1/nodes`, { headers: auth("pusher", "p") })).status).toBe(403);
  const big = JSON.stringify({ c: "1", d: "x".repeat(1 << 20) });
  expect((await fetch(`${base}/v1/console/send`, { method: "POST", body: big, headers: auth("pusher", "p") })).status).toBe(413);
  expect((await fetch(`${base}/v1/console/overview`, { headers: ops })).status).toBe(200); // ops lacks write: asked, not refused
  expect((await counts()).map((n, i) => n - before[i]!)).toEqual([1, 1, 1, 1]);
});

test("a malformed percent-encoding in a console path is 400, not a 500 showing the source", async () => {
  const res = await fetch(`${base}/v1/console/nodes/%E0%A4%A`, { headers: auth("ops", "s3cret") });
  expect(res.status).toBe(400);
  expect(await res.json()).toEqual({ error: "malformed node id in the path" });
});

test("a chunked console action is answered 413 once it passes 1 MiB, without waiting for its end", async () => {
  const got = await endlessChunkedPost(config.center.apiServer.port, "/v1/console/publish", `Authorization: ${auth("pusher", "p").authorization}\r\n`);
  expect(got).toStartWith("HTTP/1.1 413");
  expect(got).toEndWith('{"E":{"c":101,"m":"request too large"}}');
});
