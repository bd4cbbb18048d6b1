// Helpers for tests that run connmix as a user does: configuration files rewritten onto free loopback
// ports, and WebSocket clients that keep what they receive.
import { parseDocument } from "yaml";
import { onCleanup } from "../helpers/files.ts";
import { freePorts } from "../helpers/ports.ts";

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

export function localPorts(servers = 1): LocalPorts {
  const [registry, center, mesh, api, ...rest] = freePorts(4 + servers);
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
      onCleanup(() => ws.close());
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
