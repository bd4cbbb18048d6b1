// Helpers for tests that run connmix as a user does: real processes (bin/connmix, nginx, example
// programs) with their output collected, configuration files rewritten onto free loopback ports, and
// WebSocket clients that keep what they receive.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parseDocument } from "yaml";

export const ROOT = join(import.meta.dir, "..", "..");
export const BUN = join(ROOT, "node_modules/.bin/bun");

const cleanups: (() => void | Promise<unknown>)[] = [];

/** Stops every process and removes every temp dir made through this module (call in afterAll). */
export async function cleanupAll(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) await f();
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `connmix-${prefix}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `count` distinct ports nobody listens on right now. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((ok) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => ok(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** A child process whose stdout and stderr are collected into `out`. */
export class Proc {
  out = "";
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;

  constructor(readonly name: string, cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
    this.proc = Bun.spawn(cmd, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.drain(this.proc.stdout);
    this.drain(this.proc.stderr);
    cleanups.push(() => this.stop());
  }

  private async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) this.out += decoder.decode(chunk, { stream: true });
  }

  get exitCode(): number | null {
    return this.proc.exitCode;
  }

  /** Waits until the output contains `text` (or matches it); fails early when the process exits. */
  async waitFor(text: string | RegExp, ms = 15000): Promise<void> {
    const end = Date.now() + ms;
    const seen = () => (typeof text === "string" ? this.out.includes(text) : text.test(this.out));
    while (!seen()) {
      if (this.proc.exitCode !== null) await Bun.sleep(50); // let the last output arrive
      if (seen()) return;
      if (this.proc.exitCode !== null || Date.now() > end) {
        const why = this.proc.exitCode !== null ? `exited with ${this.proc.exitCode}` : `not within ${ms} ms`;
        throw new Error(`${this.name}: no ${JSON.stringify(String(text))} (${why}); output:\n${this.out.slice(-3000)}`);
      }
      await Bun.sleep(20);
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `ms`); returns the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 8000): Promise<number> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const code = await Promise.race([this.proc.exited, Bun.sleep(ms).then(() => null)]);
    if (code !== null) return code;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    throw new Error(`${this.name} did not stop within ${ms} ms of ${signal}`);
  }
}

export interface LocalPorts {
  registry: number;
  center: number;
  mesh: number;
  api: number;
  /** One per engine.servers entry. */
  servers: number[];
}

/**
 * A connmix.yaml text with every listener moved to 127.0.0.1 on the given ports, the center registry
 * pointed at ours and the log written to `logFile`; everything else (comments included) as it was.
 * `edit` may change more (path → value).
 */
export function localConfig(text: string, ports: LocalPorts, logFile: string, edit: [string[], unknown][] = []): string {
  const doc = parseDocument(text);
  const listen = (path: string[], port: number) => {
    doc.setIn([...path, "port"], port);
    doc.setIn([...path, "bind"], "127.0.0.1");
  };
  listen(["center", "registry"], ports.registry);
  listen(["center", "apiServer"], ports.center);
  listen(["engine", "meshPoint"], ports.mesh);
  listen(["engine", "apiServer"], ports.api);
  doc.setIn(["engine", "centerRegistry"], `127.0.0.1:${ports.registry}`);
  const servers = doc.getIn(["engine", "servers"]) as { items: unknown[] };
  if (servers.items.length !== ports.servers.length) {
    throw new Error(`the config has ${servers.items.length} servers, ${ports.servers.length} ports given`);
  }
  ports.servers.forEach((p, i) => listen(["engine", "servers", String(i)], p));
  doc.setIn(["logging", "filename"], logFile);
  for (const [path, value] of edit) doc.setIn(path, value);
  return doc.toString();
}

export async function localPorts(servers = 1): Promise<LocalPorts> {
  const [registry, center, mesh, api, ...rest] = await freePorts(4 + servers);
  return { registry: registry!, center: center!, mesh: mesh!, api: api!, servers: rest };
}

/** A WebSocket client that keeps what it receives, in order. */
export class Client {
  readonly received: string[] = [];
  closed: { code: number; reason: string } | null = null;
  private read = 0;

  private constructor(readonly ws: WebSocket) {
    ws.onmessage = (e) => void this.received.push(String(e.data));
    ws.onclose = (e) => void (this.closed = { code: e.code, reason: e.reason });
  }

  /** Opens `url`; extra options (Bun's `tls`, `headers`) go to the WebSocket constructor. */
  static open(url: string, options?: object): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options as string[] | undefined);
      const c = new Client(ws);
      cleanups.push(() => ws.close());
      ws.onopen = () => resolve(c);
      ws.onerror = (e) => reject(new Error(`cannot open ${url}: ${(e as ErrorEvent).message ?? "error"}`));
    });
  }

  send(data: string | object): void {
    this.ws.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  /** The next message not yet taken. */
  async next(ms = 5000): Promise<string> {
    const end = Date.now() + ms;
    while (this.received.length <= this.read) {
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) after ${this.received.length} messages`);
      if (Date.now() > end) throw new Error(`no message within ${ms} ms (got ${JSON.stringify(this.received)})`);
      await Bun.sleep(5);
    }
    return this.received[this.read++]!;
  }

  async json(ms = 5000): Promise<any> {
    return JSON.parse(await this.next(ms));
  }

  /** Takes messages (parsed when they are JSON) until one satisfies `match`, and returns it. */
  async until(match: (m: any) => boolean, ms = 5000): Promise<any> {
    const end = Date.now() + ms;
    for (;;) {
      const raw = await this.next(Math.max(1, end - Date.now()));
      let m: unknown = raw;
      try {
        m = JSON.parse(raw);
      } catch {}
      if (match(m)) return m;
    }
  }

  async waitClosed(ms = 5000): Promise<{ code: number; reason: string }> {
    const end = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > end) throw new Error(`still open after ${ms} ms`);
      await Bun.sleep(10);
    }
    return this.closed;
  }

  close(): void {
    this.ws.close();
  }
}

export async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}
