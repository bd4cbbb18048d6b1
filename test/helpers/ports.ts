// Loopback ports for tests and benchmarks: free ones the OS picks, and waiting for a listener.

const given = new Set<number>();

/** A port nobody listens on right now (the OS picks it), never the same one twice in this process. */
export function freePort(): number {
  for (;;) {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
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
