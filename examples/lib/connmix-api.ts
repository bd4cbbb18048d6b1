// A small client for connmix's APIs, shared by the example programs (publisher, backend): it reads the
// example's connmix.yaml, finds the engines through the center (GET /v1/nodes) and talks to an engine's
// /ws/v1 ({"m","p","i"} requests, queue.pop events). Backends in other languages do the same.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

interface Listen {
  port?: number;
  bind?: string;
}

const local = (l: Listen | undefined, port: number) => {
  const bind = l?.bind;
  return `${!bind || bind === "0.0.0.0" || bind === "::" ? "127.0.0.1" : bind}:${l?.port ?? port}`;
};

export interface ExampleConfig {
  /** http://host:port of the center API. */
  center: string;
  /** The `options` of the first Lua server, by name. */
  options: Record<string, string>;
}

export function readExampleConfig(path: string): ExampleConfig {
  const conf = parse(readFileSync(path, "utf8")) ?? {};
  const options: Record<string, string> = {};
  for (const o of conf.engine?.servers?.[0]?.options ?? []) options[o.name] = String(o.value ?? "");
  return { center: `http://${local(conf.center?.apiServer, 6787)}`, options };
}

/** ws://<api_server>/ws/v1 of every engine registered with the center; [] while the center is not up. */
export async function engineApis(center: string): Promise<string[]> {
  try {
    const res = await fetch(`${center}/v1/nodes`);
    if (!res.ok) return [];
    const { nodes } = (await res.json()) as { nodes: { api_server: string }[] };
    return nodes.map((n) => `ws://${n.api_server}/ws/v1`);
  } catch {
    return [];
  }
}

export interface QueueItem {
  /** The node index of the engine that queued it (a number). */
  n: number;
  /** The client whose script pushed the item. */
  c: string;
  /** The topic. */
  t: string;
  /** What the script pushed. */
  d: unknown;
}

/** One /ws/v1 connection: call() sends a request and resolves with its result (`r`). */
export class EngineApi {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: any) => void; reject: (e: Error) => void }>();
  /** Receives queue.pop events. */
  onItem: (item: QueueItem) => void = () => {};
  readonly closed: Promise<void>;

  private constructor(private readonly ws: WebSocket, readonly url: string) {
    ws.onmessage = (e) => this.receive(JSON.parse(String(e.data)));
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", () => {
        for (const p of this.pending.values()) p.reject(new Error(`${url} closed`));
        this.pending.clear();
        resolve();
      });
    });
  }

  static open(url: string): Promise<EngineApi> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const api = new EngineApi(ws, url);
      ws.onopen = () => resolve(api);
      ws.onerror = () => reject(new Error(`cannot open ${url}`));
    });
  }

  private receive(msg: { e?: string; p?: QueueItem; i?: number; E?: { c: number; m: string } | null; r?: unknown }): void {
    if (msg.e === "queue.pop" && msg.p) return this.onItem(msg.p);
    const p = typeof msg.i === "number" ? this.pending.get(msg.i) : undefined;
    if (!p) return;
    this.pending.delete(msg.i!);
    if (msg.E) p.reject(new Error(`${msg.E.m} (${msg.E.c})`));
    else p.resolve(msg.r);
  }

  call(m: string, p: unknown): Promise<any> {
    const i = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(i, { resolve, reject });
      this.ws.send(JSON.stringify({ m, p, i }));
    });
  }

  close(): void {
    this.ws.close();
  }
}
