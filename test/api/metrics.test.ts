// /metrics on a real engine: spec §7 names, labels and types, values that follow real traffic, and
// `promtool check metrics` accepting the page. Plus the summary window with an injected clock.
import { describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics/registry.ts";
import { Summary } from "../../src/metrics/summary.ts";
import { postJson } from "../helpers/http.ts";
import { idClient, useTestEngine } from "./helpers";

const e = useTestEngine(`
function on_message(msg)
  local conn = mix.websocket()
  if msg.data == "id" then return conn:send(string.format("%.0f", conn:client_id())) end
  if msg.data == "fail" then error("boom") end
  if msg.data == "spin" then while true do end end
  if msg.data == "push" then mix.queue.push("jobs", "x") return conn:send("pushed") end
end`, { edit: (config) => (config.engine.luavm.callbackTimeout = 50) });

const scrape = async () => {
  const r = await fetch(`${e.apiUrl}/metrics`);
  expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return r.text();
};

/** Value of the sample line that starts with `series ` (name plus labels). */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  if (!line) throw new Error(`no sample ${series}`);
  return Number(line.slice(series.length + 1));
}

describe("engine /metrics", () => {
  test("spec names and types, values following traffic", async () => {
    const before = await scrape();
    for (const [name, type] of [
      ["connmix_engine_servers_clients", "gauge"],
      ["connmix_engine_servers_read_messages_total", "counter"],
      ["connmix_engine_servers_send_messages_total", "counter"],
      ["connmix_engine_servers_send_errors_total", "counter"],
      ["connmix_engine_servers_send_duration_seconds", "summary"],
      ["process_resident_memory_bytes", "gauge"],
      ["process_cpu_seconds_total", "counter"],
      ["process_open_fds", "gauge"],
      ["process_start_time_seconds", "gauge"],
      ["bun_event_loop_lag_seconds", "gauge"],
    ]) {
      expect(before).toContain(`# TYPE ${name} ${type}\n`);
    }
    const read0 = sample(before, 'connmix_engine_servers_read_messages_total{protocol="websocket"}');
    const sent0 = sample(before, 'connmix_engine_servers_send_messages_total{protocol="websocket"}');
    const clients0 = sample(before, "connmix_engine_servers_clients");

    const clients = await Promise.all([idClient(e.chatUrl), idClient(e.chatUrl)]);
    for (const [, id] of clients) expect((await postJson(`${e.apiUrl}/v1/mesh/send`, { c: id, d: "x" })).body.E).toBeNull();
    const after = await scrape();
    expect(sample(after, "connmix_engine_servers_clients")).toBe(clients0 + 2);
    expect(sample(after, 'connmix_engine_servers_read_messages_total{protocol="websocket"}')).toBe(read0 + 2);
    expect(sample(after, 'connmix_engine_servers_send_messages_total{protocol="websocket"}')).toBe(sent0 + 4);
    const series = 'connmix_engine_servers_send_duration_seconds_count{protocol="websocket",scenario="local"}';
    expect(sample(after, series)).toBeGreaterThanOrEqual(2);
    const median = sample(after, 'connmix_engine_servers_send_duration_seconds{protocol="websocket",scenario="local",quantile="0.5"}');
    expect(median).toBeGreaterThan(0);
    expect(median).toBeLessThan(0.1);
    expect(sample(after, "process_resident_memory_bytes")).toBeGreaterThan(1 << 20);
    expect(sample(after, "process_open_fds")).toBeGreaterThan(3);
    for (const [c] of clients) c.close();
  });

  test("Lua errors, callback timeouts and queue depth follow what the script does", async () => {
    const before = await scrape();
    const errors0 = sample(before, "connmix_engine_lua_errors_total");
    const timeouts0 = sample(before, "connmix_engine_lua_callback_timeouts_total");
    const [c] = await idClient(e.chatUrl);
    for (const cmd of ["fail", "fail", "spin", "push", "push", "push"]) c.send(cmd);
    for (let i = 0; i < 3; i++) expect(await c.next()).toBe("pushed");
    const after = await scrape();
    expect(sample(after, "connmix_engine_lua_errors_total")).toBe(errors0 + 3);
    expect(sample(after, "connmix_engine_lua_callback_timeouts_total")).toBe(timeouts0 + 1);
    expect(sample(after, 'connmix_engine_queue_items{topic="jobs"}')).toBe(3);
    expect(sample(after, 'connmix_engine_queue_consumers{topic="jobs"}')).toBe(0);
    expect(sample(after, "connmix_engine_queue_topic_size")).toBe(2000);
    c.close();
  });

  test("promtool check metrics accepts the page", async () => {
    const proc = Bun.spawn(["promtool", "check", "metrics"], { stdin: new TextEncoder().encode(await scrape()), stdout: "pipe", stderr: "pipe" });
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
  });
});

describe("registry and summary", () => {
  test("label values and help text are escaped", () => {
    const r = new Registry();
    r.counter("x_total", 'help with \\ and\nnewline', ["k"], () => [[['a"b\\c\nd'], 3]]);
    expect(r.text()).toBe('# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\nx_total{k="a\\"b\\\\c\\nd"} 3\n');
  });

  test("quantiles cover the last maxAge seconds; sum and count cover everything", () => {
    let now = 0;
    const s = new Summary("d_seconds", "d", ["k"], { maxAge: 10, ageBuckets: 5, bufCap: 500 }, () => now);
    const child = s.child("v");
    for (let i = 1; i <= 100; i++) child.observe(i);
    expect(child.quantiles()).toEqual([1, 25, 50, 75, 100]);
    now = 6000; // 6 s later: the first observations are still in the window
    for (let i = 1; i <= 100; i++) child.observe(1000 + i);
    expect(child.quantiles()).toEqual([1, 50, 100, 1050, 1100]);
    now = 12500; // the bucket holding 1..100 has expired
    expect(child.quantiles()).toEqual([1001, 1025, 1050, 1075, 1100]);
    now = 30000; // everything expired
    expect(child.quantiles().map(Number.isNaN)).toEqual([true, true, true, true, true]);
    const out: string[] = [];
    s.render(out);
    expect(out).toContain('d_seconds_count{k="v"} 200');
    expect(out).toContain('d_seconds_sum{k="v"} 110100');
    expect(out).toContain('d_seconds{k="v",quantile="0.5"} NaN');
  });

  test("bufCap bounds the samples kept per bucket; quantiles stay close", () => {
    const s = new Summary("d", "d", [], { maxAge: 600, ageBuckets: 5, bufCap: 200 }, () => 0);
    const child = s.child();
    for (let i = 0; i < 100000; i++) child.observe(i % 1000);
    const [p50, p90, p99] = child.quantiles([0.5, 0.9, 0.99]);
    expect(Math.abs(p50! - 500)).toBeLessThan(120);
    expect(Math.abs(p90! - 900)).toBeLessThan(60);
    expect(p99!).toBeGreaterThan(940);
    expect(child.count).toBe(100000);
  });
});
