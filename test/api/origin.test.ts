// Origin policy of the engine API (issue 14): a web page must not drive the API through its visitors'
// browsers. A request carrying an Origin header is refused (403) unless access.origins lists it; requests
// without one (backends, curl) are unaffected. The attack itself runs in headless Chromium: a page served
// from another origin posts text/plain (no CORS preflight) and opens /ws/v1, and the room hears nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { chromium, type Browser } from "playwright-core";
import { postJson } from "../helpers/http.ts";
import { Client } from "../helpers/ws.ts";
import { basic, upgradeStatus, useTestEngine, type TestEngine } from "./helpers";

const ENTRY = `function on_message(msg, conn) conn:subscribe("room:1") conn:send("joined") end`;
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** A member of room:1 of `e`. */
async function member(e: TestEngine): Promise<Client> {
  const c = await Client.open(e.chatUrl);
  expect(await c.ask("join")).toBe("joined");
  return c;
}

/** Publishes a marker without an Origin: the next thing `c` hears must be it (nothing else got in before). */
async function nothingElseHeard(e: TestEngine, c: Client, headers: Record<string, string> = {}): Promise<void> {
  expect(await postJson(`${e.apiUrl}/v1/mesh/publish`, { c: "room:1", d: "marker" }, headers)).toEqual({ status: 200, body: { E: null, r: { s: 1, f: 0 } } });
  expect(await c.next()).toBe("marker");
}

const publish = (e: TestEngine, headers: Record<string, string>) =>
  postJson(`${e.apiUrl}/v1/mesh/publish`, JSON.stringify({ c: "room:1", d: "from a web page" }), { "content-type": "text/plain", ...headers });

describe("no access.origins: every request with an Origin is refused", () => {
  const e = useTestEngine(ENTRY);

  test("a cross-site text/plain POST does not publish (403)", async () => {
    const c = await member(e);
    const r = await publish(e, { origin: "https://evil.example" });
    expect(r).toEqual({ status: 403, body: "forbidden: origin https://evil.example is not listed in access.origins\n" });
    // GETs and the "null" origin of sandboxed pages and files too.
    expect((await fetch(`${e.apiUrl}/metrics`, { headers: { origin: "null" } })).status).toBe(403);
    await nothingElseHeard(e, c);
    c.close();
  });

  test("a cross-site /ws/v1 upgrade is refused (403)", async () => {
    expect(await upgradeStatus(e.api.port, "/ws/v1", { origin: "https://evil.example" })).toBe(403);
    expect(await upgradeStatus(e.api.port, "/ws/v1")).toBe(101);
  });
});

describe("access.origins lists the pages that may call the API", () => {
  const e = useTestEngine(ENTRY, {
    edit: (config) => {
      config.access.origins = ["https://app.example.com", "https://*.example.org"];
    },
  });

  test("a listed origin (exactly, or by glob) is served; others are not", async () => {
    const c = await member(e);
    expect((await publish(e, { origin: "https://app.example.com" })).status).toBe(200);
    expect(await c.next()).toBe("from a web page");
    expect((await publish(e, { origin: "https://chat.example.org" })).status).toBe(200);
    expect(await c.next()).toBe("from a web page");
    for (const origin of ["https://app.example.com.evil.example", "http://app.example.com", "https://example.org.evil.example"]) {
      expect((await publish(e, { origin })).status).toBe(403);
    }
    expect(await upgradeStatus(e.api.port, "/ws/v1", { origin: "https://app.example.com" })).toBe(101);
    expect(await upgradeStatus(e.api.port, "/ws/v1", { origin: "https://app.example.net" })).toBe(403);
    await nothingElseHeard(e, c);
    c.close();
  });
});

describe("with access.users, a listed origin still needs credentials and an unlisted one is refused with them", () => {
  const users = [{ username: "web", password: "pw", roles: ["read" as const, "write" as const], host: "*" }];
  const e = useTestEngine(ENTRY, { users, edit: (config) => void (config.access.origins = ["https://app.example.com"]) });

  test("origin first, then credentials", async () => {
    expect((await publish(e, { origin: "https://app.example.com" })).status).toBe(401);
    expect((await publish(e, { origin: "https://app.example.com", ...basic("web", "pw") })).status).toBe(200);
    expect((await publish(e, { origin: "https://evil.example", ...basic("web", "pw") })).status).toBe(403);
  });
});

describe("in a real browser", () => {
  const e = useTestEngine(ENTRY);
  let browser: Browser | undefined;
  let site: ReturnType<typeof Bun.serve> | undefined;
  afterAll(async () => {
    await browser?.close();
    site?.stop(true);
  });

  test("a page of another site cannot publish with a text/plain POST or over /ws/v1", async () => {
    // The attacker's page, on another loopback address: another site as far as the browser knows.
    site = Bun.serve({
      hostname: "127.0.0.2",
      port: 0,
      fetch: () => new Response(ATTACK_PAGE, { headers: { "content-type": "text/html" } }),
    });
    const c = await member(e);
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: 20_000 });
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.2:${site.port}/?api=127.0.0.1:${e.api.port}`);
    const outcome = await page.evaluate("window.attack");
    // The no-cors POST was sent (its answer is opaque to the page); the WebSocket never opened.
    expect(outcome).toEqual({ post: "sent", ws: "refused" });
    await nothingElseHeard(e, c);
    c.close();
  }, 30_000);
});

const ATTACK_PAGE = `<!doctype html><script>
const api = new URLSearchParams(location.search).get("api");
const body = JSON.stringify({ c: "room:1", d: "from a web page" });
window.attack = (async () => {
  const out = {};
  await fetch("http://" + api + "/v1/mesh/publish", { method: "POST", mode: "no-cors", headers: { "content-type": "text/plain" }, body })
    .then(() => (out.post = "sent"), (e) => (out.post = String(e)));
  out.ws = await new Promise((done) => {
    const ws = new WebSocket("ws://" + api + "/ws/v1");
    ws.onopen = () => {
      ws.onmessage = (m) => done("answered " + m.data);
      ws.send(JSON.stringify({ m: "mesh.publish", p: { c: "room:1", d: "from a web page" }, i: 1 }));
    };
    ws.onerror = () => done("refused");
  });
  return out;
})();
</script>`;
