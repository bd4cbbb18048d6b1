// examples/chat-room: its README command, and its page in headless Chromium. The page joins a room
// through its form, shows a message a backend publishes through the HTTP API and one another client
// sends, and what the page sends reaches that other client. Screenshot: test-artifacts/chat.png.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser } from "playwright-core";
import { launchChromium } from "../helpers/browser.ts";
import { cleanupAll } from "../helpers/files.ts";
import { post } from "../helpers/http.ts";
import { listening } from "../helpers/ports.ts";
import { ROOT } from "../helpers/process.ts";
import { Client } from "../helpers/ws.ts";
import { runExample, type RunningExample } from "./workspace.ts";

let example: RunningExample;
let browser: Browser | undefined;

beforeAll(async () => {
  example = await runExample("chat-room", "start the lua server");
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

describe("examples/chat-room", () => {
  test("the README command serves the chat room of lua/entry.websocket.lua", async () => {
    expect(example.command).toBe("bin/connmix single -f examples/chat-room/connmix.yaml");
    const c = await Client.open(example.url);
    c.send({ op: "send", msg: "nobody" });
    expect(await c.json()).toEqual({ status: "error", msg: "join a room first" });
    c.send({ op: "ping" });
    expect(await c.json()).toEqual({ status: "success" });
    c.close();
  });

  test("the page in headless Chromium joins a room, shows published messages and sends its own", async () => {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const file = pathToFileURL(join(ROOT, "examples/chat-room/index.html"));
    await page.goto(`${file}?ws=${encodeURIComponent(example.url)}`);
    await page.locator("#status", { hasText: "connected" }).waitFor({ timeout: 10_000 });

    await page.fill("#room-id", "1002");
    await page.click("#join button");
    await page.locator("#room", { hasText: "(room 1002)" }).waitFor();

    // Another member of the room, outside the browser.
    const other = await Client.open(example.url);
    other.send({ op: "join", room_id: 1002 });
    expect(await other.json()).toEqual({ status: "success" });

    // Wait until the page's join has been applied: a publish counts both members.
    const deadline = Date.now() + 5000;
    let published = await post(`${example.api}/v1/mesh/publish`, { c: "room:1002", d: JSON.stringify({ msg: "hello from the backend" }) });
    while (published.r.s < 2 && Date.now() < deadline) {
      await Bun.sleep(50);
      published = await post(`${example.api}/v1/mesh/publish`, { c: "room:1002", d: JSON.stringify({ msg: "hello from the backend" }) });
    }
    expect(published).toEqual({ E: null, r: { s: 2, f: 0 } });
    await page.locator("#messages li", { hasText: "hello from the backend" }).first().waitFor({ timeout: 5000 });

    other.send({ op: "send", msg: "hi from a terminal" });
    const line = page.locator("#messages li", { hasText: "hi from a terminal" });
    await line.waitFor({ timeout: 5000 });
    expect(await line.locator(".from").textContent()).toMatch(/^#\d+$/);

    await page.fill("#text", "hi from the browser");
    await page.click("#send button");
    const got = await other.until((m) => m.msg === "hi from the browser");
    expect(typeof got.client_id).toBe("number");
    await page.locator("#messages li", { hasText: "hi from the browser" }).waitFor({ timeout: 5000 });

    mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "test-artifacts/chat.png") });
    expect(errors).toEqual([]);
  }, 40_000);

  test("SIGTERM stops it: exit 0, the port is closed", async () => {
    expect(await example.proc.stop()).toBe(0);
    expect(await listening(example.ports.servers[0]!)).toBe(false);
  });
});
