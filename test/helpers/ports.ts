// Loopback ports for tests and benchmarks: free ones the OS picks, and waiting for a listener.

const given = new Set<number>();

// bin/test runs several test files at once (test/run.ts) and gives each a slot: its ports then come from a
// range of its own below the ephemeral range (32768+), so neither another file nor an outgoing connection's
// source port can take a port between freePort() and the listen of the server it is for.
const SLOT = process.env.CONNMIX_TEST_PORT_SLOT;
const SLOT_SIZE = 3000;
const range = SLOT === undefined ? null : { base: 12_000 + Number(SLOT) * SLOT_SIZE, next: Math.floor(Math.random() * SLOT_SIZE) };

function candidate(): number {
  if (!range) return 0; // the OS picks
  if (given.size >= SLOT_SIZE) throw new Error(`freePort: all ${SLOT_SIZE} ports of slot ${SLOT} are given`);
  return range.base + (range.next++ % SLOT_SIZE);
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
