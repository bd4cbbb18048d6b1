// /metrics as connmix's prometheus.md shows it: the send duration summary has quantiles 0, 0.25, 0.5,
// 0.75 and 1 for protocol websocket|socket x scenario local|forward, every series present (NaN while
// empty); read_messages_total of a socket server counts decoded messages, not TCP chunks.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startApiServer, type ApiServer } from "../../src/api/server.ts";
import { TcpClient } from "../engine/helpers.ts";
import { startEngine, type Started } from "../helpers/engine.ts";
import { cleanupAll } from "../helpers/files.ts";
import { freePort } from "../helpers/ports.ts";

let s: Started;
let api: ApiServer;

beforeAll(async () => {
  s = await startEngine(`
local text = require("protocols.text")
protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode
function on_message(line, conn) end`, {
    server: { protocol: "socket" },
    edit: (c) => void (c.engine.apiServer = { ...c.engine.apiServer, bind: "127.0.0.1", port: freePort() }),
  });
  api = await startApiServer(s.config, s.engine.node);
});

afterAll(async () => {
  await api?.stop();
  await cleanupAll();
});

const scrape = async () => (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text();
const value = (page: string, series: string) => {
  const line = page.split("\n").find((l) => l.startsWith(series + " "));
  if (!line) throw new Error(`no sample ${series}`);
  return Number(line.slice(series.length + 1));
};

test("every send duration series exists from the start with quantiles 0 to 1, NaN while empty", async () => {
  const page = await scrape();
  const name = "connmix_engine_servers_send_duration_seconds";
  for (const protocol of ["websocket", "socket"]) {
    for (const scenario of ["local", "forward"]) {
      for (const q of ["0", "0.25", "0.5", "0.75", "1"]) {
        expect(Number.isNaN(value(page, `${name}{protocol="${protocol}",scenario="${scenario}",quantile="${q}"}`))).toBe(true);
      }
      expect(value(page, `${name}_count{protocol="${protocol}",scenario="${scenario}"}`)).toBe(0);
      expect(value(page, `${name}_sum{protocol="${protocol}",scenario="${scenario}"}`)).toBe(0);
    }
  }
});

test("socket read_messages_total counts decoded messages; a send to a socket client fills its local series", async () => {
  const read0 = value(await scrape(), 'connmix_engine_servers_read_messages_total{protocol="socket"}');
  const c = await TcpClient.connect(s.port);
  c.write("one\ntwo\nthree\n"); // one TCP chunk, three messages
  c.write("fo");
  c.write("ur\n"); // two chunks, one message
  const id = await new Promise<number>((resolve) => {
    const t = setInterval(() => {
      const ids = [...s.engine.node.connections.keys()];
      if (ids.length) { clearInterval(t); resolve(ids[0]!); }
    }, 5);
  });
  const deadline = Date.now() + 3000;
  let read = read0;
  while (read < read0 + 4 && Date.now() < deadline) {
    await Bun.sleep(20);
    read = value(await scrape(), 'connmix_engine_servers_read_messages_total{protocol="socket"}');
  }
  expect(read).toBe(read0 + 4);
  const r = await fetch(`http://127.0.0.1:${api.port}/v1/mesh/send`, { method: "POST", body: JSON.stringify({ c: id, d: "hi" }) });
  expect(await r.json()).toEqual({ E: null, r: { s: true } });
  expect((await c.lines(1))[0]).toBe("hi");
  const page = await scrape();
  expect(value(page, 'connmix_engine_servers_send_duration_seconds_count{protocol="socket",scenario="local"}')).toBe(1);
  expect(value(page, 'connmix_engine_servers_send_duration_seconds{protocol="socket",scenario="local",quantile="1"}')).toBeGreaterThan(0);
});
