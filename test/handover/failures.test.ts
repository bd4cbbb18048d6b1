// Reloads that must not hurt: a successor that cannot start (a bad config, an entry that does not compile)
// leaves the old process serving as if nothing happened, with the reason in its log and from `connmix reload`;
// a second reload while one drains is refused; a center hands over without any engine losing its index.
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll } from "../helpers/files.ts";
import { BUN, MAIN, runSync } from "../helpers/process.ts";
import { Client } from "../helpers/ws.ts";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { HANDOVER_ENTRY, eventually, stopWithSuccessor, migrates, nodes } from "./helpers.ts";
import { alive, readPid } from "../../src/handover/pidfile.ts";

afterAll(cleanupAll);

const MIGRATE_WARNING = /WARN\t\S+\tnet\.ipv4\.tcp_migrate_req is .+: connections still waiting in a listener's accept queue/;

/** A center and one engine (-p 1, drainTimeout 2 s) with a client on it. */
async function cluster() {
  const d = new ClusterDir();
  writeFileSync(join(d.dir, "lua/entry.lua"), HANDOVER_ENTRY);
  const [conf, ports] = d.engine("a", ["drainTimeout: 2"]);
  const center = new Node("center", d.center(), d.dir);
  await center.waitFor(/start the registry server/);
  const a = new Node("engine", conf, d.dir, "1");
  await a.waitFor(/start the lua server/, 15_000);
  const client = await Client.open(`ws://127.0.0.1:${ports.lua}/chat`);
  const reload = () => runSync([BUN, MAIN, "reload", "engine", "-f", conf], d.dir, 70_000);
  return { d, conf, ports, center, a, client, reload, pidFile: join(d.dir, "logs/a.engine.pid") };
}

test("a successor with a bad config or an entry that does not compile: the old process keeps serving and says why", async () => {
  const c = await cluster();
  try {
    const good = readFileSync(c.conf, "utf8");
    writeFileSync(c.conf, good.replace("drainTimeout: 2", "drainTimeout: -1"));
    // `connmix reload` checks the file first and signals nobody...
    const bad = c.reload();
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^connmix: nothing reloaded: \S+a\.yaml: engine\.drainTimeout must be a non-negative number, got -1\n$/);
    // ...a signal starts the successor, which refuses the file.
    process.kill(c.a.pid, "SIGUSR2");
    await c.a.waitFor(/ERROR\t\S+\treload failed: the successor \(pid \d+\) did not start: \S+a\.yaml: engine\.drainTimeout must be a non-negative number, got -1; this process keeps serving/, 10_000);

    writeFileSync(c.conf, good);
    const entry = join(c.d.dir, "lua/entry.lua");
    writeFileSync(entry, "function on_message(msg\n");
    const mark = c.a.mark();
    const broken = c.reload();
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/reload failed: .*entry\.lua:2: '\)' expected near '<eof>'/);
    await c.a.waitFor(/this process keeps serving/, 1000, mark);

    // Nothing changed: same process, same pid file, one node, the client served.
    expect(readPid(c.pidFile)).toBe(c.a.pid);
    expect(c.a.exitCode).toBeNull();
    expect(await eventually(async () => (await nodes(c.d)).length === 1, 6000)).toBe(true);
    expect((await nodes(c.d))[0]!.state).toBe("registered");
    expect(await c.client.ask("id")).toMatch(/^id \d+$/);
    expect(c.client.closed).toBeNull();
  } finally {
    await Promise.all([c.a.stop(), c.center.stop()]);
    c.d.remove();
  }
}, 60_000);

test("a second reload while the first one drains is refused with a clear message", async () => {
  const c = await cluster();
  let successor = 0;
  try {
    const old = c.a.pid;
    const mark = c.a.mark();
    expect(c.reload().code).toBe(0);
    successor = readPid(c.pidFile)!;
    // A host that would reset the connections queued in a closing listener is told so (docs/deployment.md).
    if (!migrates) await c.a.waitFor(MIGRATE_WARNING, 2000, mark);
    process.kill(old, "SIGUSR2");
    await c.a.waitFor(new RegExp(`WARN\\t\\S+\\treceived SIGUSR2: reload refused, this process handed over to pid ${successor} and has been draining for \\d+s; reload that one`), 2000);
    expect(await c.client.ask("id")).toMatch(/^id \d+$/); // still served while draining
    if (migrates) expect(MIGRATE_WARNING.test(c.a.out.slice(mark))).toBe(false);
    expect(await eventually(() => !alive(old), 6000)).toBe(true);
    expect(c.client.closed?.code).toBe(1012);
  } finally {
    await stopWithSuccessor(successor, () => [c.a.stop("SIGKILL"), c.center.stop()]);
    c.d.remove();
  }
}, 60_000);

test("reloading the center: engines keep their registration and index, the successor's /v1/nodes lists them at once", async () => {
  const c = await cluster();
  let successor = 0;
  try {
    const before = await nodes(c.d);
    const mark = c.a.mark();
    const r = runSync([BUN, MAIN, "reload", "center", "-f", join(c.d.dir, "center.yaml")], c.d.dir, 70_000);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    successor = readPid(join(c.d.dir, "logs/center.center.pid"))!;
    expect(successor).not.toBe(c.center.pid);
    expect(await eventually(() => !alive(c.center.pid), 5000)).toBe(true);
    expect(await nodes(c.d)).toEqual(before);
    await c.a.waitFor(/register engine node_id/, 5000, mark); // re-registered with the successor
    expect(c.a.out.slice(mark)).not.toContain("the center assigned node index");
    expect(await nodes(c.d)).toEqual(before);
    expect(await c.client.ask("id")).toMatch(/^id \d+$/);
  } finally {
    await stopWithSuccessor(successor, () => [c.a.stop(), c.center.stop("SIGKILL")]);
    c.d.remove();
  }
}, 60_000);

test("connmix drain (a Kubernetes preStop): no new clients, the held ones and the API still served, exit once they left", async () => {
  const c = await cluster();
  try {
    const drain = Bun.spawn([BUN, MAIN, "drain", "engine", "-f", c.conf], { cwd: c.d.dir, stdout: "pipe", stderr: "pipe" });
    await c.a.waitFor(/received SIGUSR1: draining, this process exits once its clients left/, 10_000);
    expect(await eventually(async () => (await nodes(c.d))[0]?.state === "draining", 3000)).toBe(true);
    await expect(Client.open(`ws://127.0.0.1:${c.ports.lua}/chat`)).rejects.toThrow(/Failed to connect/);
    expect(await c.client.ask("sub news")).toBe("subscribed news");
    const r = await fetch(`http://127.0.0.1:${c.ports.api}/v1/mesh/publish`, { method: "POST", body: JSON.stringify({ c: "news", d: "still here" }) });
    expect(await r.json()).toEqual({ E: null, r: { s: 1, f: 0 } });
    expect(await c.client.next()).toBe("still here");
    c.client.ws.close();
    expect(await drain.exited).toBe(0);
    expect(await new Response(drain.stdout).text()).toMatch(/sent SIGUSR1 to the engine \(pid \d+\)\nconnmix: engine \(pid \d+\) drained and exited\n/);
    expect(c.a.exitCode).toBe(0);
    await c.a.waitFor(/drain: every client connection has closed/, 3000); // its last output may still be in the pipe
  } finally {
    await Promise.all([c.a.stop(), c.center.stop()]);
    c.d.remove();
  }
}, 60_000);
