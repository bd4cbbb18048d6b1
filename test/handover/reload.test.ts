// `connmix reload` of an engine in a center + 2 engines cluster, with real processes: 1000 clients on the
// reloaded engine A, a steady stream of API publishes and sends (through A's API port, which moves to the
// successor, and through engine B), queue items pushed before and during the drain, and a client that
// connects in a tight loop. Run with one process per engine and with -p 2.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { cleanupAll } from "../helpers/files.ts";
import { BUN, MAIN, runSync } from "../helpers/process.ts";
import { Client } from "../helpers/ws.ts";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { Connector, HANDOVER_ENTRY, Traffic, eventually, stopWithSuccessor, migrates, openFleet, openRetrying, nodes } from "./helpers.ts";
import { alive, readPid } from "../../src/handover/pidfile.ts";

afterAll(cleanupAll);

const CLIENTS = 1000;
const DRAIN_SECONDS = 8;

for (const cpus of ["1", "2"]) {
  describe(`engine -p ${cpus}`, () => {
    test(`reload under load: ${CLIENTS} clients keep their connection until drainTimeout, every publish and send arrives once, no connection refused`, async () => {
      const d = new ClusterDir();
      writeFileSync(join(d.dir, "lua/entry.lua"), HANDOVER_ENTRY);
      const [aConf, aPorts] = d.engine("a", [`drainTimeout: ${DRAIN_SECONDS}`]);
      const [bConf, bPorts] = d.engine("b");
      const center = new Node("center", d.center(), d.dir);
      await center.waitFor(/start the registry server/);
      const a = new Node("engine", aConf, d.dir, cpus);
      const b = new Node("engine", bConf, d.dir, "1");
      const pidFile = join(d.dir, "logs/a.engine.pid");
      let successor = 0;
      try {
        await Promise.all([a.waitFor(/start the lua server/, 15_000), b.waitFor(/start the lua server/, 15_000)]);
        await b.waitFor(/mesh link to node_id \S+ \(.*\) up/, 5000);
        const oldPid = readPid(pidFile)!;
        expect(oldPid).toBe(a.pid);

        const url = `ws://127.0.0.1:${aPorts.lua}/chat`;
        const fleet = await openFleet(url, CLIENTS, "all");
        // Queue items from A's clients before the reload; nobody consumes them yet.
        for (let i = 0; i < 20; i++) fleet[i]!.ws.send(`q jobs before-${i}`);
        const traffic = new Traffic([aPorts.api, bPorts.api], fleet, "all");
        const connector = new Connector(url);
        await Bun.sleep(1000);

        const reload = runSync([BUN, MAIN, "reload", "engine", "-f", aConf], d.dir, 70_000);
        expect({ code: reload.code, err: reload.err }).toEqual({ code: 0, err: "" });
        expect(reload.out).toMatch(new RegExp(`sent SIGUSR2 to the engine \\(pid ${oldPid}\\)\\n.*engine reloaded: pid \\d+ serves, pid ${oldPid} drains`));
        successor = readPid(pidFile)!;
        expect(successor).not.toBe(oldPid);

        // The overlap: both are nodes, the old one draining; its clients still work both ways.
        // (the old process tells the center it drains once the successor said it serves, a moment after the pid file)
        const states = async () => (await nodes(d)).map((n) => n.state).sort().join();
        await eventually(async () => (await states()) === "draining,registered,registered", 3000);
        expect(await states()).toBe("draining,registered,registered");
        for (let i = 20; i < 30; i++) fleet[i]!.ws.send(`q jobs during-${i}`);
        fleet[0]!.ws.send(`send ${fleet[1]!.id} from-old-client`);
        // A backend connecting now may reach the old process during its API's last second: it answers 503, connect again.
        const consumer = await openRetrying(`ws://127.0.0.1:${aPorts.api}/ws/v1`);
        consumer.send({ m: "queue.pop", p: { t: ["jobs"] }, i: 1 });
        await Bun.sleep(1500);
        await Promise.all([traffic.stop(), connector.stop()]);
        console.log(`published ${traffic.published.length}, sent ${traffic.sent.size}, connector opened ${connector.opened}`);

        // Everything arrived exactly once, and nobody was disconnected before the deadline.
        await eventually(() => traffic.delivered(), 5000);
        expect(traffic.failures).toEqual([]);
        expect(traffic.problems()).toEqual([]);
        expect(traffic.published.length).toBeGreaterThan(5);
        expect(traffic.sent.size).toBeGreaterThan(5);
        expect(traffic.published.filter((p) => p.s !== CLIENTS || p.f !== 0)).toEqual([]);
        expect(fleet.filter((m) => m.closed !== null)).toEqual([]);
        expect(fleet[0]!.replies).toContain("sent nil");
        expect(fleet[1]!.replies).toContain("from-old-client");
        // Never refused: the port is open throughout. Not one connection fails either where the kernel hands a
        // closing listener's queue to the successor (net.ipv4.tcp_migrate_req=1, which bin/setup --test sets as
        // root), nor with -p 1, where the old process steers new connections to the successor before it closes
        // a listener (src/handover/steer.ts). Otherwise, with -p N, a connection caught in a closing worker's
        // accept queue may be reset (docs/deployment.md, known limits): at most one is tolerated there, and shown.
        expect(connector.refused.filter((e) => /refused/i.test(e))).toEqual([]);
        if (cpus === "1" || migrates) expect(connector.refused).toEqual([]);
        else {
          if (connector.refused.length) console.log(`-p ${cpus}: connections reset during the reload: ${connector.refused.join("; ")}`);
          expect(connector.refused.length).toBeLessThanOrEqual(1);
        }
        expect(connector.opened).toBeGreaterThan(10);
        const items = new Set<string>();
        await eventually(() => {
          for (const raw of consumer.received) {
            const m = JSON.parse(String(raw));
            if (m.e === "queue.pop") items.add(m.p.d.d);
          }
          return items.size >= 30;
        }, 5000);
        const expected = [...Array.from({ length: 20 }, (_, i) => `before-${i}`), ...Array.from({ length: 10 }, (_, i) => `during-${i + 20}`)];
        expect([...items].sort()).toEqual(expected.sort());
        expect(consumer.received.filter((r) => String(r).includes('"e":"queue.pop"')).length).toBe(30);

        // The deadline: every remaining client is closed with 1012, the old process exits 0.
        expect(await eventually(() => !alive(oldPid), (DRAIN_SECONDS + 6) * 1000)).toBe(true);
        expect(a.exitCode).toBe(0);
        await eventually(() => fleet.every((m) => m.closed !== null), 3000);
        expect([...new Set(fleet.map((m) => m.closed?.code))]).toEqual([1012]);
        await a.waitFor(/drain: drainTimeout reached, closing \d+ client connections \(1012 service restart\)/, 1000);
        const drained = a.out.indexOf("drainTimeout reached");
        expect(a.out.slice(0, drained)).not.toMatch(/ERROR/);
        expect(a.out).toContain(`handed over to pid ${successor}, shutting down`);
        expect(a.out).toMatch(/drain: 30 queue items handed to the successor|drain: \d+ queue items handed to the successor/);

        // The successor serves alone, under the configured ports.
        expect((await nodes(d)).map((n) => n.state)).toEqual(["registered", "registered"]);
        const c = await Client.open(url);
        expect(await c.ask("id")).toMatch(/^id \d+$/);
      } finally {
        await stopWithSuccessor(successor, () => [a.stop("SIGKILL"), b.stop(), center.stop()]);
        d.remove();
      }
    }, 90_000);
  });
}
