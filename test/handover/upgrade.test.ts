// An upgrade: the compiled executable of a `dev` node (center and engine in one process) is replaced on disk
// by a rebuilt one with another version string, then SIGUSR2. The successor runs the new executable (its
// version line shows), takes over the center's table (engine B keeps its registration and index) and the
// ports; the old process's clients keep receiving until the drain ends. Run with -p 1 and -p 2.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll } from "../helpers/files.ts";
import { BUILD_TIMEOUT_MS, BINARY, buildIfStale, buildVersion } from "../helpers/build.ts";
import { Proc } from "../helpers/process.ts";
import { Client } from "../helpers/ws.ts";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { HANDOVER_ENTRY, Traffic, eventually, stopWithSuccessor, openFleet, nodes } from "./helpers.ts";
import { alive, readPid } from "../../src/handover/pidfile.ts";

const NEW_VERSION = "1.0.2-upgrade";
let newBinary = "";

beforeAll(() => {
  console.log(`upgrade.test.ts: ${buildIfStale(true)}`);
  newBinary = buildVersion(NEW_VERSION);
}, 2 * BUILD_TIMEOUT_MS);

afterAll(cleanupAll);

for (const cpus of ["1", "2"]) {
  describe(`dev -p ${cpus}`, () => {
    test("replace the executable, SIGUSR2: the new version serves, the center's engines keep their index, old clients drain", async () => {
      const d = new ClusterDir();
      writeFileSync(join(d.dir, "lua/entry.lua"), HANDOVER_ENTRY);
      const exe = join(d.dir, "connmix");
      copyFileSync(BINARY, exe);
      const [devConf, devPorts] = d.dev(["drainTimeout: 6"]);
      const [bConf, bPorts] = d.engine("b");
      const dev = new Proc("dev", [exe, "dev", "-f", devConf, "-p", cpus], { cwd: d.dir });
      let successor = 0;
      let b: Node | null = null;
      try {
        await dev.waitFor(/start the lua server/, 20_000);
        b = new Node("engine", bConf, d.dir, "1");
        await b.waitFor(/start the lua server/, 15_000);
        await b.waitFor(/mesh link to node_id \S+ \(.*\) up/, 5000);
        const before = await nodes(d);
        const bIndex = before.find((n) => n.id === b!.out.match(/register engine node_id (\S+)/)![1])!.index;

        const fleet = await openFleet(`ws://127.0.0.1:${devPorts.lua}/chat`, 50, "all");
        const traffic = new Traffic([devPorts.api, bPorts.api], fleet, "all");
        // The upgrade: the new executable replaces the old file (a rename, as package managers do), then SIGUSR2.
        copyFileSync(newBinary, `${exe}.new`);
        renameSync(`${exe}.new`, exe);
        const mark = dev.mark();
        process.kill(dev.pid, "SIGUSR2");
        await dev.waitFor(/reload: the successor \(pid (\d+)\) serves/, 30_000, mark);
        successor = readPid(join(d.dir, "logs/dev.dev.pid"))!;
        expect(successor).not.toBe(dev.pid);
        expect(dev.out.slice(mark)).toContain(`connmix${NEW_VERSION}, bun${Bun.version}, lua5.1+bitop, linux, x64`);

        // The successor's center has the old table: B keeps its index and is not renumbered; the old engine drains.
        await dev.waitFor(/center: handed \d+ nodes to the successor/, 5000, mark);
        // (the old engine re-registers with the new center within 0.25 s, saying it drains)
        const states = async () => (await nodes(d)).map((n) => n.state).sort().join();
        await eventually(async () => (await states()) === "draining,registered,registered", 5000);
        const during = await nodes(d);
        expect(during.find((n) => n.index === bIndex)?.state).toBe("registered");
        expect(during.map((n) => n.state).sort()).toEqual(["draining", "registered", "registered"]);
        await Bun.sleep(1000);
        await traffic.stop();
        await eventually(() => traffic.delivered(), 5000);
        expect(traffic.failures).toEqual([]);
        expect(traffic.problems()).toEqual([]);
        expect(fleet.filter((m) => m.closed !== null)).toEqual([]);

        // The drain ends: the old process exits 0, its clients got 1012; the new version serves alone.
        expect(await eventually(() => !alive(dev.pid), 10_000)).toBe(true);
        expect(dev.exitCode).toBe(0);
        await eventually(() => fleet.every((m) => m.closed !== null), 3000);
        expect([...new Set(fleet.map((m) => m.closed?.code))]).toEqual([1012]);
        const after = await nodes(d);
        expect(after.find((n) => n.index === bIndex)?.state).toBe("registered");
        expect(after.length).toBe(2);
        expect(b.out).not.toContain("the center assigned node index");
        const c = await Client.open(`ws://127.0.0.1:${devPorts.lua}/chat`);
        expect(await c.ask("id")).toMatch(/^id \d+$/);
      } finally {
        await stopWithSuccessor(successor, () => [dev.stop("SIGKILL"), b?.stop()]);
        d.remove();
      }
    }, 90_000);
  });
}
