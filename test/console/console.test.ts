// The web console in headless Chromium against a real center and two engines (separate processes, access
// control on; engine b with two workers): every view shows the cluster's real state (nodes, a node's clients with context and
// channels, channels across engines, queues, metrics, logs), the live tester talks to a Lua server, and
// the actions publish and send for real, for a user with the write role only. Screenshots go to
// test-artifacts/console-*.png.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { Connmix } from "../../sdk/typescript/index.ts";
import type { NodesReply } from "../../src/api/protocol.ts";
import { launchChromium } from "../helpers/browser.ts";
import { ROOT } from "../helpers/process.ts";
import type { Client } from "../helpers/ws.ts";
import { SdkCluster, eventually } from "../sdk/cluster.ts";

const ACCESS = `access:
  users:
    - { username: ops, password: "op pass", roles: [read, write], host: "127.*.*.*" }
    - { username: viewer, password: look, roles: [read], host: "*" }
`;
const OPS = { username: "ops", password: "op pass" };
const VIEWER = { username: "viewer", password: "look" };
const basic = (u: { username: string; password: string }) => ({ authorization: "Basic " + btoa(`${u.username}:${u.password}`) });
const ARTIFACTS = join(ROOT, "test-artifacts");

// Engine b runs two workers (-p 2): its clients live in them, and the console asks them.
const cluster = new SdkCluster(ACCESS, ["1", "2"]);
let browser: Browser;
let cm: Connmix;
let a1: Client, b1: Client, b2: Client;
let idA1 = "", idB1 = "";

beforeAll(async () => {
  await cluster.start();
  mkdirSync(ARTIFACTS, { recursive: true });
  cm = new Connmix({ center: cluster.centerUrl, ...OPS, refreshMs: 200 });
  await cm.start();
  await eventually(() => cm.nodes().filter((n) => n.connected).length === 2, 10_000, "sdk connected to both engines");
  [a1, idA1] = await cluster.client(0);
  [b1, idB1] = await cluster.client(1);
  [b2] = await cluster.client(1);
  expect(await a1.ask("sub room:1")).toBe("subscribed room:1");
  expect(await b1.ask("sub room:1")).toBe("subscribed room:1");
  expect(await b1.ask("sub room:2")).toBe("subscribed room:2");
  // A context value set by a backend (it releases the script's wait), a consumer of "tasks" on both
  // engines, and three items waiting in engine b's queue "jobs".
  a1.send("wait uid");
  await Bun.sleep(100);
  await cm.conn(idA1).setContextValue("uid", 42);
  expect(await a1.next()).toBe("value 42");
  cm.consume(["tasks"], () => {});
  for (const job of ["j1", "j2", "j3"]) b2.send(`q ${job}`);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  cm?.close();
  await browser?.close();
  await cluster.stop();
});

const consoleUrl = () => `${cluster.centerUrl}/console/`;

async function open(user: typeof OPS): Promise<Page> {
  const context = await browser.newContext({ httpCredentials: user, viewport: { width: 1400, height: 1300 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  (page as Page & { errors: string[] }).errors = errors;
  await page.goto(consoleUrl());
  await page.locator("#nodes tbody tr[data-node]").nth(1).waitFor({ timeout: 15_000 });
  return page;
}

const texts = (page: Page, selector: string) => page.locator(selector).allInnerTexts();
const cellsOf = async (page: Page, selector: string): Promise<string[][]> =>
  (await page.locator(selector).evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => (c as unknown as { innerText: string }).innerText))));

describe("the console", () => {
  test("needs credentials", async () => {
    expect((await fetch(consoleUrl())).status).toBe(401);
    expect((await fetch(`${cluster.centerUrl}/v1/console/overview`)).status).toBe(401);
    expect((await fetch(consoleUrl(), { headers: basic(VIEWER) })).status).toBe(200);
  });

  test("its own page may POST (same origin); another site's page may not", async () => {
    const post = (origin: string) =>
      fetch(`${cluster.centerUrl}/v1/console/publish`, { method: "POST", headers: { ...basic(OPS), origin }, body: JSON.stringify({ c: "nobody", d: "x" }) });
    const own = await post(cluster.centerUrl);
    expect([own.status, await own.json()]).toEqual([200, { E: null, r: { s: 0, f: 0 } }]);
    const other = await post("http://evil.example");
    expect(other.status).toBe(403);
    expect(await other.text()).toContain("origin http://evil.example is not listed in access.origins");
  });

  test("shows the nodes, a node's clients, channels, queues, metrics and logs as they are", async () => {
    const page = await open(OPS);
    const { nodes } = (await (await fetch(`${cluster.centerUrl}/v1/nodes`, { headers: basic(OPS) })).json()) as NodesReply;
    const byApi = (k: number) => nodes.find((n) => n.api_server === `127.0.0.1:${cluster.engines[k]!.api}`)!;
    const [nodeA, nodeB] = [byApi(0), byApi(1)];
    expect(await page.locator("#role").innerText()).toBe("role: write");

    // Nodes: id, index, API address, version, uptime, clients, state.
    await eventually(async () => (await cellsOf(page, "#nodes tbody tr")).some((r) => r[0] === nodeB.id && r[5] === "2"), 10_000, "node b with 2 clients");
    const rows = await cellsOf(page, "#nodes tbody tr");
    const rowA = rows.find((r) => r[0] === nodeA.id)!;
    expect(rowA.slice(1, 3)).toEqual([String(nodeA.index), nodeA.api_server]);
    expect(rowA[3]).toStartWith("connmix1.0.1, bun1.4.4");
    expect(rowA[4]).toMatch(/^\d+m \d+s$/);
    expect(rowA.slice(5)).toEqual(["1", "registered", "ok"]);

    // Channels across the cluster: room:1 has a subscriber on each engine.
    await eventually(async () => (await cellsOf(page, "#channels tbody tr")).length === 2, 5000, "two channels");
    const channels = await cellsOf(page, "#channels tbody tr");
    expect(channels.map((c) => c.slice(0, 2))).toEqual([["room:1", "2"], ["room:2", "1"]]);
    expect(channels[0]![2]!.split(", ").sort()).toEqual([`${nodeA.id}: 1`, `${nodeB.id}: 1`].sort());

    // Queues: jobs waits on b with no consumer; tasks is consumed on both engines by the SDK.
    await eventually(async () => (await cellsOf(page, "#queues tbody tr")).some((q) => q[1] === "jobs" && q[2] === "3"), 5000, "3 jobs queued");
    const queues = await cellsOf(page, "#queues tbody tr");
    expect(queues.filter((q) => q[1] === "jobs")).toEqual([[nodeB.id, "jobs", "3", "0"]]);
    expect(queues.filter((q) => q[1] === "tasks").map((q) => [q[0], q[3]]).sort()).toEqual([[nodeA.id, "1"], [nodeB.id, "1"]].sort());

    // A node's clients: click node a.
    await page.locator(`#nodes tbody tr[data-node="${nodeA.id}"]`).click();
    await page.locator(`#clients tbody tr[data-client="${idA1}"]`).waitFor({ timeout: 5000 });
    const client = (await cellsOf(page, `#clients tbody tr[data-client="${idA1}"]`))[0]!;
    expect(client[0]).toBe(idA1);
    expect(client[1]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(client[2]).toBe(String(cluster.engines[0]!.lua));
    expect(JSON.parse(client[3]!)).toEqual({ uid: 42 });
    expect(client[4]).toBe("room:1");
    expect(await page.locator("#node-log").innerText()).toContain("start the lua server");

    // Live metrics: one row per engine, rates once two polls are in; logs of the center.
    await eventually(async () => (await cellsOf(page, "#metrics tbody tr")).every((r) => r[2] !== "…"), 8000, "message rates");
    const metrics = await cellsOf(page, "#metrics tbody tr");
    expect(metrics.map((m) => m[0]).sort()).toEqual([nodeA.id, nodeB.id].sort());
    expect(metrics.find((m) => m[0] === nodeB.id)![1]).toBe("2");
    expect(await page.locator("#center-log").innerText()).toContain(`register node 127.0.0.1 node_id ${nodeB.id}`);
    await page.screenshot({ path: join(ARTIFACTS, "console-overview.png"), fullPage: true });
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  test("publish and send act on the cluster; the live tester talks to a Lua server", async () => {
    const page = await open(OPS);
    await page.fill("#api-publish-channel", "room:1");
    await page.fill("#api-publish-data", "hello from the console");
    await page.click("#api-publish");
    expect([await a1.next(), await b1.next()]).toEqual(["hello from the console", "hello from the console"]);
    await page.locator("#api-result", { hasText: '"s":2' }).waitFor({ timeout: 5000 });
    expect(await page.locator("#api-result").innerText()).toBe('publish → HTTP 200 {"E":null,"r":{"s":2,"f":0}}');

    await page.fill("#api-send-client", idB1);
    await page.fill("#api-send-data", "just for you");
    await page.click("#api-send");
    expect(await b1.next()).toBe("just for you");
    await page.locator("#api-result", { hasText: "send → HTTP 200" }).waitFor({ timeout: 5000 });

    // The tester: connect to engine b's Lua server, ask for the id, see the client on the node's page.
    const url = `ws://127.0.0.1:${cluster.engines[1]!.lua}/chat`;
    await page.selectOption("#tester-target", url);
    await page.click("#tester-connect");
    await page.locator("#tester-state", { hasText: `connected to ${url}` }).waitFor({ timeout: 5000 });
    await page.fill("#tester-input", "sub room:1");
    await page.click("#tester-send");
    await page.locator("#tester-log", { hasText: "< subscribed room:1" }).waitFor({ timeout: 5000 });
    await page.fill("#tester-input", "id");
    await page.click("#tester-send");
    const reply = await page.locator("#tester-log", { hasText: "< id " }).innerText();
    const testerId = /< id (\d+)/.exec(reply)![1]!;
    expect(await cm.publish("room:1", "to everyone")).toEqual({ s: 3, f: 0 });
    await page.locator("#tester-log", { hasText: "< to everyone" }).waitFor({ timeout: 5000 });
    expect([await a1.next(), await b1.next()]).toEqual(["to everyone", "to everyone"]);
    const nodeB = cm.nodes().find((n) => n.api_server.endsWith(`:${cluster.engines[1]!.api}`))!;
    await page.locator(`#nodes tbody tr[data-node="${nodeB.id}"]`).click();
    // The table is redrawn by the click and by the 2 s poll: wait for a view that shows the subscription.
    await page.locator(`#clients tbody tr[data-client="${testerId}"]`, { hasText: "room:1" }).waitFor({ timeout: 5000 });
    expect((await cellsOf(page, `#clients tbody tr[data-client="${testerId}"]`))[0]![4]).toBe("room:1");
    await page.screenshot({ path: join(ARTIFACTS, "console-actions.png"), fullPage: true });
    await page.click("#tester-connect"); // disconnect
    await page.locator("#tester-state", { hasText: "not connected" }).waitFor({ timeout: 5000 });
    await page.context().close();
  }, 60_000);

  test("a read-only user sees everything but cannot act", async () => {
    const page = await open(VIEWER);
    expect(await page.locator("#role").innerText()).toBe("role: read (actions disabled)");
    expect(await page.locator("#api-publish").isDisabled()).toBe(true);
    expect(await page.locator("#api-send").isDisabled()).toBe(true);
    expect((await texts(page, "#channels tbody tr")).length).toBeGreaterThanOrEqual(2);
    // Not even by hand: the center refuses the POST (403) and nothing is published.
    const res = await fetch(`${cluster.centerUrl}/v1/console/publish`, { method: "POST", headers: basic(VIEWER), body: JSON.stringify({ c: "room:1", d: "sneaky" }) });
    expect(res.status).toBe(403);
    expect(await cm.publish("room:1", "after")).toMatchObject({ s: 2 });
    expect([await a1.next(), await b1.next()]).toEqual(["after", "after"]);
    await page.screenshot({ path: join(ARTIFACTS, "console-read-only.png"), fullPage: true });
    await page.context().close();
  }, 60_000);
});
