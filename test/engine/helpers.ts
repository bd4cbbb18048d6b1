// End-to-end helpers for the engine's servers: a Lua server started in-process with the timeouts these
// tests count on, and raw TCP clients.
import type { Socket } from "bun";
import type { ServerConfig } from "../../src/config/index.ts";
import type { Connection } from "../../src/engine/connection.ts";
import { startEngine, type Started } from "../helpers/engine.ts";
import { until } from "../helpers/wait.ts";

/** Sweep interval of these tests' servers: a readTimeout or writeTimeout of 0.5 s is checked 5 times over. */
export const SWEEP_MS = 100;

/** startEngine with readTimeout 5 s and writeTimeout 2 s unless `server` says otherwise, swept every SWEEP_MS. */
export function startServer(entry: string, server: Partial<ServerConfig> = {}): Promise<Started> {
  return startEngine(entry, { server: { readTimeout: 5, writeTimeout: 2, ...server }, sweepMs: SWEEP_MS });
}

/** A raw TCP client that collects every byte it receives. */
export class TcpClient {
  private chunks: Buffer[] = [];
  closed = false;
  socket!: Socket<undefined>;

  static async connect(port: number, opts: { read?: boolean } = {}): Promise<TcpClient> {
    const c = new TcpClient();
    const reading = opts.read ?? true;
    c.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => { if (reading) c.chunks.push(Buffer.from(chunk)); },
        close: () => { c.closed = true; },
        error: () => { c.closed = true; },
      },
    });
    if (!reading) c.socket.pause();
    return c;
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
    this.socket.flush();
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return this.received.toString();
  }

  /** Waits until the received bytes, as text, satisfy `cond` (default: at least `n` lines). */
  async lines(n: number, ms = 3000): Promise<string[]> {
    await until(() => this.text().split("\n").length > n, ms, `${n} lines (got ${JSON.stringify(this.text())})`);
    return this.text().split("\n").slice(0, n);
  }

  async waitClosed(ms = 3000): Promise<void> {
    await until(() => this.closed, ms, "server close");
  }

  end(): void {
    this.socket.end();
  }
}

/**
 * Pushes 64 KiB chunks to `conn` with sendLocal while it is open: fast until its writes back up, then at
 * `slowMs` intervals. Returns the largest backlog seen and the time from the first backlog to the drop.
 */
export async function flood(s: Started, conn: Connection, pending: () => number, slowMs: number) {
  const chunk = Buffer.alloc(64 * 1024, 97);
  let max = 0;
  let stalledAt = 0;
  const deadline = Date.now() + 10_000;
  while (conn.open && Date.now() < deadline) {
    s.engine.node.sendLocal(conn.id, chunk, 2, true);
    const p = pending();
    max = Math.max(max, p);
    if (p > 0 && !stalledAt) stalledAt = Date.now();
    await Bun.sleep(stalledAt ? slowMs : 2);
  }
  return { max, droppedAfter: Date.now() - stalledAt, open: conn.open };
}

/** A client's masked WebSocket text frame (payload under 126 bytes), for raw TCP clients. */
export function maskedFrame(text: string): Buffer {
  const p = Buffer.from(text);
  const mask = [7, 1, 9, 3];
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length, ...mask]), p.map((x, i) => x ^ mask[i & 3]!)]);
}
