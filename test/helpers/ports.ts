// Loopback ports for tests and benchmarks: free ones the OS picks, and waiting for a listener.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alive } from "../../src/handover/pidfile.ts";

const given = new Set<number>();

// bin/test runs several test files at once (test/run.ts) and gives each a slice of ports of its own, below the
// ephemeral range (32768+), so neither another file nor an outgoing connection's source port can take a port
// between freePort() and the listen of the server it is for. Slices are claimed per machine (other checkouts'
// bin/test runs may be going on), so two runs never share one.
const FIRST_PORT = 10_000;
const SLICE_SIZE = 1100;
const SLICES = 20;
const SLICE = process.env.CONNMIX_TEST_PORT_SLOT;
const range = SLICE === undefined ? null : { base: FIRST_PORT + Number(SLICE) * SLICE_SIZE, next: Math.floor(Math.random() * SLICE_SIZE) };

function candidate(): number {
  if (!range) return 0; // the OS picks
  if (given.size >= SLICE_SIZE) throw new Error(`freePort: all ${SLICE_SIZE} ports of slice ${SLICE} are given`);
  return range.base + (range.next++ % SLICE_SIZE);
}

/** The pid in a slice's claim: 0 when unclaimed, -1 while the claimer has not written it yet. */
function holderOf(lock: string): number {
  try {
    return Number(readFileSync(join(lock, "pid"), "utf8")) || -1;
  } catch {
    return existsSync(lock) ? -1 : 0;
  }
}

/**
 * Claims up to `n` port slices for this process until it exits (test/run.ts hands one to each file it runs):
 * a directory per slice in the temp dir, holding the claimer's pid; one whose process is gone is taken over.
 */
export function claimPortSlices(n: number): number[] {
  const dir = join(tmpdir(), "connmix-test-ports");
  mkdirSync(dir, { recursive: true });
  const claimed: number[] = [];
  for (let k = 0; k < SLICES && claimed.length < n; k++) {
    const lock = join(dir, String(k));
    const holder = holderOf(lock);
    if (holder > 0 && !alive(holder)) rmSync(lock, { recursive: true, force: true });
    try {
      mkdirSync(lock);
    } catch {
      continue; // held (or being claimed right now)
    }
    writeFileSync(join(lock, "pid"), String(process.pid));
    claimed.push(k);
  }
  process.on("exit", () => claimed.forEach((k) => rmSync(join(dir, String(k)), { recursive: true, force: true })));
  return claimed;
}

/** A port nobody listens on right now, never the same one twice in this process. */
export function freePort(): number {
  for (;;) {
    let port: number;
    try {
      const l = Bun.listen({ hostname: "127.0.0.1", port: candidate(), socket: { data() {} } });
      port = l.port;
      l.stop(true);
    } catch {
      continue; // taken: the next one
    }
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
}

/** `count` distinct free ports. */
export function freePorts(count: number): number[] {
  return Array.from({ length: count }, freePort);
}

/** True when something accepts connections on 127.0.0.1:`port`. */
export async function listening(port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}

/** Waits until something accepts connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await listening(port))) {
    if (Date.now() > end) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await Bun.sleep(20);
  }
}

/** Waits until nothing accepts connections on 127.0.0.1:`port` any more (a process that exits). */
export async function waitForPortClosed(port: number, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (await listening(port)) {
    if (Date.now() > end) throw new Error(`${port} still accepts connections after ${ms} ms`);
    await Bun.sleep(20);
  }
}

/** TCP ports `pid` listens on (ss, as root sees every process's sockets). */
export function listeningPorts(pid: number): number[] {
  const out = Bun.spawnSync(["ss", "-Hltnp"], { stdout: "pipe" }).stdout.toString();
  return out.split("\n").filter((l) => l.includes(`pid=${pid},`)).map((l) => Number(/:(\d+)\s/.exec(l.split(/\s+/)[3] + " ")![1]));
}
