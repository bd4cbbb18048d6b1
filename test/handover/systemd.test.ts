// sd_notify for Type=notify units: a node says READY=1 with its pid once it serves, and a successor says
// MAINPID=<its pid> when it takes over, so systemd follows the reload (deploy/systemd/connmix@.service).
// The test plays systemd: a unix datagram socket (through libc, as connmix does) named by NOTIFY_SOCKET.
import { afterAll, expect, test } from "bun:test";
import { dlopen, ptr } from "bun:ffi";
import { join } from "node:path";
import { cleanupAll } from "../helpers/files.ts";
import { BUN, MAIN, Proc } from "../helpers/process.ts";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { eventually } from "./helpers.ts";
import { readPid } from "../../src/handover/pidfile.ts";

afterAll(cleanupAll);

const libc = dlopen("libc.so.6", {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
} as const);
const MSG_DONTWAIT = 0x40;

/** A bound unix datagram socket at `path`; `take()` returns the datagrams received so far. */
function notifySocket(path: string): { take(): string[]; close(): void } {
  const fd = libc.symbols.socket(1, 2, 0);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  Buffer.from(path).copy(addr, 2);
  if (libc.symbols.bind(fd, ptr(addr), 110) !== 0) throw new Error(`cannot bind ${path}`);
  const buf = Buffer.alloc(4096);
  return {
    take() {
      const out: string[] = [];
      for (let n = Number(libc.symbols.recv(fd, ptr(buf), buf.length, MSG_DONTWAIT)); n > 0; n = Number(libc.symbols.recv(fd, ptr(buf), buf.length, MSG_DONTWAIT))) {
        out.push(buf.subarray(0, n).toString());
      }
      return out;
    },
    close: () => void libc.symbols.close(fd),
  };
}

test("READY=1 with MAINPID once the engine serves; the successor of a reload sends its own MAINPID", async () => {
  const d = new ClusterDir();
  const sock = notifySocket(join(d.dir, "notify.sock"));
  const [conf] = d.engine("a", ["drainTimeout: 1"]);
  const center = new Node("center", d.center(), d.dir);
  const a = new Proc("engine", [BUN, MAIN, "engine", "-f", conf, "-p", "1"], { cwd: d.dir, env: { NOTIFY_SOCKET: join(d.dir, "notify.sock") } });
  let successor = 0;
  try {
    await a.waitFor(/start the lua server/, 15_000);
    const got: string[] = [];
    expect(await eventually(() => (got.push(...sock.take()), got.length > 0), 3000)).toBe(true);
    expect(got).toEqual([`READY=1\nMAINPID=${a.pid}`]);
    process.kill(a.pid, "SIGUSR2");
    await a.waitFor(/reload: the successor \(pid \d+\) serves/, 15_000);
    successor = readPid(join(d.dir, "logs/a.engine.pid"))!;
    expect(await eventually(() => (got.push(...sock.take()), got.length > 1), 3000)).toBe(true);
    expect(got[1]).toBe(`READY=1\nMAINPID=${successor}`);
  } finally {
    if (successor) process.kill(successor, "SIGTERM");
    await Promise.all([a.stop(), center.stop()]);
    sock.close();
    d.remove();
  }
}, 40_000);
