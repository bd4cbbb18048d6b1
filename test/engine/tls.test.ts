// TLS without a proxy (issue 14): wss straight to a websocket Lua server, TLS to a socket Lua server, https
// and wss to the engine API, https to the center API, with certificates openssl makes for this run. When
// the files change, new connections get the new certificate while open ones go on with theirs; a renewal
// that does not load is logged and changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig, type TlsConfig } from "../../src/config/index.ts";
import { startCenterApi } from "../../src/center/http.ts";
import { RegistryServer } from "../../src/center/registry.ts";
import { LINK_TIMINGS } from "../../src/center/protocol.ts";
import { Keys } from "../../src/net/auth.ts";
import { startEngine } from "../helpers/engine.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { freePort } from "../helpers/ports.ts";
import { replacePair, servedName, testCa, TlsClient, waitServed, type TestCa } from "../helpers/tls.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { startTestEngine, type TestEngine } from "../api/helpers.ts";
import { TcpClient } from "./helpers.ts";

const readLog = captureLog();
let ca: TestCa;
let a: { cert: string; key: string };
let b: { cert: string; key: string };
beforeAll(async () => {
  ca = await testCa();
  [a, b] = [await ca.issue("server-a"), await ca.issue("server-b")];
});
afterAll(cleanupAll);

/** A copy of server-a's pair under new names, which a test then renews in place; checked every 0.1 s. */
function livePair(name: string): TlsConfig {
  const live = { cert: join(ca.dir, `${name}.crt`), key: join(ca.dir, `${name}.key`), reloadCheck: 0.1 };
  copyFileSync(a.cert, live.cert);
  copyFileSync(a.key, live.key);
  return live;
}

const ECHO_WS = `function on_message(msg, conn) conn:subscribe("room") conn:send("echo " .. msg.data) end`;

describe("websocket servers and the engine API over TLS", () => {
  let e: TestEngine;
  let live: TlsConfig;
  beforeAll(async () => {
    live = livePair("engine");
    e = await startTestEngine(ECHO_WS, {
      edit: (config) => {
        config.engine.servers[0]!.tls = live;
        config.engine.apiServer.tls = live;
      },
    });
  });
  afterAll(() => e.stop());
  const wss = () => e.chatUrl.replace("ws://", "wss://");
  const apiWss = () => e.apiWs.replace("ws://", "wss://");
  const apiHttps = () => e.apiUrl.replace("http://", "https://");

  test("wss: a client trusting the CA talks to the script; one that does not, or plain ws, cannot connect", async () => {
    const c = await Client.open(wss(), { tls: { ca: ca.ca } });
    expect(await c.ask("hi")).toBe("echo hi");
    c.close();
    await expect(Client.open(wss())).rejects.toThrow();
    await expect(Client.open(e.chatUrl)).rejects.toThrow();
  });

  test("the API over https and wss", async () => {
    const r = await fetch(`${apiHttps()}/v1/mesh/publish`, { method: "POST", body: '{"c":"nobody","d":"x"}', tls: { ca: ca.ca } });
    expect(await r.json()).toEqual({ E: null, r: { s: 0, f: 0 } });
    const api = await Client.open(apiWss(), { tls: { ca: ca.ca } });
    expect(await api.call("mesh.publish", { c: "nobody", d: "x" }, 1)).toEqual({ E: null, r: { s: 0, f: 0 }, i: 1 });
    api.close();
    await expect(fetch(`${e.apiUrl}/metrics`)).rejects.toThrow(); // plain HTTP to a TLS port
  });

  test("new certificate files: new connections get them, open WebSockets and API connections go on", async () => {
    const luaPort = e.config.engine.servers[0]!.port;
    expect(await servedName(luaPort)).toBe("server-a");
    expect(await servedName(e.api.port)).toBe("server-a");
    const old = await Client.open(wss(), { tls: { ca: ca.ca } });
    expect(await old.ask("before")).toBe("echo before");
    const oldApi = await Client.open(apiWss(), { tls: { ca: ca.ca } });

    replacePair(b, live);
    await waitServed(luaPort, "server-b");
    await waitServed(e.api.port, "server-b");
    expect(readLog()).toContain(`TLS certificate ${live.cert} reloaded; new connections get it, open ones keep theirs`);

    // The open connections, made under server-a's certificate, still work both ways.
    expect(await old.ask("after")).toBe("echo after");
    const fresh = await Client.open(wss(), { tls: { ca: ca.ca } });
    expect(await fresh.ask("new")).toBe("echo new");
    // A publish reaches the subscribers of the old listener and of the new one.
    expect(await oldApi.call("mesh.publish", { c: "room", d: "to both" }, 2)).toEqual({ E: null, r: { s: 2, f: 0 }, i: 2 });
    expect([await old.next(), await fresh.next()]).toEqual(["to both", "to both"]);
    const viaHttps = await fetch(`${apiHttps()}/v1/mesh/publish`, { method: "POST", body: '{"c":"room","d":"again"}', tls: { ca: ca.ca } });
    expect(await viaHttps.json()).toEqual({ E: null, r: { s: 2, f: 0 } });
    expect([await old.next(), await fresh.next()]).toEqual(["again", "again"]);

    // A renewal written wrong (server-a's key with server-b's certificate) is refused; server-b stays.
    copyFileSync(a.key, live.key);
    await until(() => readLog().includes(`is not the key of the certificate in ${live.cert}`), 5000, "the refused renewal logged");
    expect(await servedName(luaPort)).toBe("server-b");
    expect(await old.ask("still")).toBe("echo still");
    for (const c of [old, fresh, oldApi]) c.close();
  });
});

describe("socket servers over TLS", () => {
  const ENTRY = `
    local text = require("protocols.text")
    protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode
    function on_connect(client_id, conn) text.send(conn, "welcome") end
    function on_message(line, conn)
      text.send(conn, "echo " .. line)
      if line == "bye" then conn:close() end
    end`;

  test("on_connect's greeting arrives, lines are echoed; openssl s_client too; a client that never handshakes is dropped", async () => {
    const s = await startEngine(ENTRY, { server: { protocol: "socket", tls: livePair("socket"), readTimeout: 1 } });
    const c = await TlsClient.connect(s.port, ca.ca);
    await c.waitFor("welcome\n"); // written once the handshake was done, not lost before it
    c.write("hi\n");
    await c.waitFor("echo hi\n");

    const sc = Bun.spawn(["openssl", "s_client", "-connect", `127.0.0.1:${s.port}`, "-CAfile", join(ca.dir, "ca.crt"), "-verify_return_error", "-quiet", "-ign_eof"], {
      stdin: new TextEncoder().encode("bye\n"),
      stdout: "pipe",
      stderr: "pipe",
      timeout: 10_000,
    });
    expect(await new Response(sc.stdout).text()).toBe("welcome\necho bye\n");
    expect(await new Response(sc.stderr).text()).toContain("depth=0 CN = server-a\nverify return:1\n");
    expect(await sc.exited).toBe(0);

    c.end();
    await until(() => s.engine.node.connections.size === 0, 5000, "no connection left");
    const silent = await TcpClient.connect(s.port);
    await Bun.sleep(100);
    expect(s.engine.node.connections.size).toBe(0); // no connection (nor on_connect) before the handshake
    await silent.waitClosed(5000); // readTimeout 1 s bounds the handshake
    await s.stop();
  });

  test("new certificate files: the open TLS connection goes on, new ones get the new certificate", async () => {
    const live = livePair("socket-rotate");
    const s = await startEngine(ENTRY, { server: { protocol: "socket", tls: live } });
    const old = await TlsClient.connect(s.port, ca.ca);
    await old.waitFor("welcome\n");
    replacePair(b, live);
    await waitServed(s.port, "server-b");
    old.write("after\n");
    await old.waitFor("echo after\n");
    const fresh = await TlsClient.connect(s.port, ca.ca);
    await fresh.waitFor("welcome\n");
    old.end();
    fresh.end();
    await s.stop();
  });
});

test("the center API over https", async () => {
  const config = defaultConfig();
  config.center.apiServer = { bind: "127.0.0.1", port: freePort(), tls: { ...b, reloadCheck: 0 } };
  const api = startCenterApi(config, new RegistryServer({ keys: new Keys([]), tls: null, link: LINK_TIMINGS }));
  try {
    const r = await fetch(`https://127.0.0.1:${api.port}/v1/nodes`, { tls: { ca: ca.ca } });
    expect(await r.json()).toEqual({ nodes: [] });
    expect(await servedName(api.port)).toBe("server-b");
  } finally {
    await api.stop();
  }
});
