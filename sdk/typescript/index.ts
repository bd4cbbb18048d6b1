// connmix backend SDK for TypeScript (Bun and Node). Finds the engines through the center (/version,
// /v1/nodes), keeps one /ws/v1 connection per engine (reconnecting with backoff, following engines as
// they come and go), and offers send, publish, conn.call and a queue consumer, typed from the server's
// own protocol definitions (src/api/protocol.ts). Usage: sdk/typescript/README.md.
import { CONN_METHODS, type ClientId, type ConnMethod, type Methods, type NodeInfo, type NodesReply, type QueueItem, type VersionReply } from "../../src/api/protocol.ts";
import { nodeOf } from "../../src/net/client-ids.ts";
import { Consumer, type ConsumerOptions } from "./consumer.ts";
import { Engine } from "./engine.ts";
import { ConnmixError, TRANSPORT } from "./errors.ts";
import { socketClass } from "./websocket.ts";

export { CODE, ConnmixError, TRANSPORT, type ErrorCode } from "./errors.ts";
export { Consumer, type ConsumerOptions } from "./consumer.ts";
export type { ClientId, ConnMethod, NodeInfo, QueueItem } from "../../src/api/protocol.ts";

export interface ConnmixOptions {
  /** The center's API, e.g. "http://127.0.0.1:6787". */
  center: string;
  /** An access.users entry (role write for the engines' /ws/v1, read for the center). */
  username?: string;
  password?: string;
  /** How often the center's node list is read again. Default 2000 ms. */
  refreshMs?: number;
  /** How long a request waits for its answer, and for an engine connection. Default 10000 ms. */
  requestTimeoutMs?: number;
  /** Reconnect delays: from min, doubling per failure, at most max (with jitter). Default 250 / 5000 ms. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Connection events, for logs: an engine joined, went down (and when it is retried), or left. */
  onEvent?: (event: "up" | "down" | "added" | "removed", node: NodeInfo, detail?: string) => void;
}

type Data = string | Uint8Array;

/** A frame's `d` and `t`: text as it is, bytes as base64 with t "binary". */
function frame(data: Data): { d: string; t?: "binary" } {
  return typeof data === "string" ? { d: data } : { d: Buffer.from(data).toString("base64"), t: "binary" };
}

export class Connmix {
  /** Engine connections by API address (an engine restarted on the same address keeps its connection). */
  private readonly engines = new Map<string, Engine>();
  private consumer: Consumer<any> | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly headers: Record<string, string> | undefined;
  private readonly opts: Required<Omit<ConnmixOptions, "username" | "password" | "onEvent">> & Pick<ConnmixOptions, "onEvent">;

  constructor(options: ConnmixOptions) {
    this.opts = { refreshMs: 2000, requestTimeoutMs: 10_000, backoffMinMs: 250, backoffMaxMs: 5000, ...options, center: options.center.replace(/\/+$/, "") };
    if (options.username !== undefined) {
      this.headers = { authorization: "Basic " + Buffer.from(`${options.username}:${options.password ?? ""}`).toString("base64") };
    }
  }

  /** Checks the center speaks v1, connects to every listed engine, and keeps following the list. */
  async start(): Promise<void> {
    const version = await this.get<VersionReply>("/version");
    if (!version.apis?.includes("v1")) throw new ConnmixError(TRANSPORT, `the center at ${this.opts.center} does not offer API v1 (it offers ${JSON.stringify(version.apis)})`);
    await this.refresh();
    this.timer = setInterval(() => this.refresh().catch(() => {}), this.opts.refreshMs);
  }

  private async get<T>(path: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.opts.center + path, { headers: this.headers, signal: AbortSignal.timeout(this.opts.requestTimeoutMs) });
    } catch (e) {
      throw new ConnmixError(TRANSPORT, `center ${this.opts.center}${path}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new ConnmixError(TRANSPORT, `center ${this.opts.center}${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Reads the node list once: connects to new engines, closes those that left. */
  async refresh(): Promise<void> {
    const { nodes } = await this.get<NodesReply>("/v1/nodes");
    const WebSocket = await socketClass();
    const listed = new Set(nodes.map((n) => n.api_server));
    for (const node of nodes) {
      const known = this.engines.get(node.api_server);
      if (known) {
        known.node = node;
        continue;
      }
      this.engines.set(node.api_server, new Engine(node, {
        WebSocket,
        headers: this.headers,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        backoffMinMs: this.opts.backoffMinMs,
        backoffMaxMs: this.opts.backoffMaxMs,
        onOpen: (e) => {
          this.opts.onEvent?.("up", e.node);
          this.consumer?.attach(e);
        },
        onItem: (item, e) => this.consumer?.deliver(item, e),
        onDown: (e, why, retryMs) => this.opts.onEvent?.("down", e.node, `${why}, retry in ${retryMs} ms`),
      }));
      this.opts.onEvent?.("added", node);
    }
    for (const [address, engine] of this.engines) {
      if (listed.has(address)) continue;
      this.engines.delete(address);
      this.consumer?.detach(engine);
      engine.close();
      this.opts.onEvent?.("removed", engine.node);
    }
  }

  /** The engines the center lists now, and whether each one's connection is open. */
  nodes(): (NodeInfo & { connected: boolean })[] {
    return [...this.engines.values()].map((e) => ({ ...e.node, connected: e.open }));
  }

  /** An engine to send through: the one holding `client` when given and connected, else any open one. */
  private async engineFor(client?: ClientId): Promise<Engine> {
    const all = [...this.engines.values()];
    const index = client === undefined ? -1 : nodeOf(Number(client));
    const owner = all.find((e) => e.node.index === index && e.open);
    if (owner) return owner;
    const open = all.filter((e) => e.open);
    const ready = open.find((e) => e.node.state !== "draining") ?? open[0];
    if (ready) return ready;
    if (all.length === 0) throw new ConnmixError(TRANSPORT, "no engine is registered with the center");
    // Reconnecting: wait for the first connection to come back.
    const ok = await Promise.race(all.map((e) => e.whenOpen(this.opts.requestTimeoutMs)));
    if (!ok) throw new ConnmixError(TRANSPORT, `no engine connection within ${this.opts.requestTimeoutMs} ms`);
    return this.engineFor(client);
  }

  private async call<M extends keyof Methods>(m: M, p: Methods[M]["p"], client?: ClientId): Promise<Methods[M]["r"]> {
    return (await this.engineFor(client)).request(m, p);
  }

  /** Sends to one client, wherever it is connected (text, or bytes as a binary frame). Error 401 when it is gone. */
  send(client: ClientId, data: Data): Promise<{ s: true }> {
    return this.call("mesh.send", { c: client, ...frame(data) }, client);
  }

  /** Publishes to a channel on every engine: s subscribers reached, f engines that failed. */
  publish(channel: string, data: Data): Promise<{ s: number; f: number }> {
    return this.call("mesh.publish", { c: channel, ...frame(data) });
  }

  /** The connection methods of one client (conn.call); error 301 when it is gone or the method failed. */
  conn(client: ClientId) {
    const call = (f: ConnMethod, ...a: unknown[]) => this.call("conn.call", { c: client, f, a }, client);
    return {
      call,
      setContextValue: (key: string, value: unknown) => call("set_context_value", key, value),
      setContext: (context: Record<string, unknown>) => call("set_context", context),
      subscribe: (...channels: string[]) => call("subscribe", ...channels),
      unsubscribe: (...channels: string[]) => call("unsubscribe", ...channels),
    };
  }

  /**
   * Consumes queue topics on every engine, now and as they come and go. One consumer per client at a
   * time (queue.unpop, used for backpressure, stops a whole connection's topics).
   */
  consume<D = unknown>(topics: string[], handler: (item: QueueItem<D>) => unknown, options: ConsumerOptions = {}): Consumer<D> {
    if (this.consumer) throw new Error("connmix sdk: this client already has a consumer (stop it first, or give it every topic)");
    const consumer = new Consumer<D>(topics, handler, options, () => (this.consumer = null));
    this.consumer = consumer;
    for (const e of this.engines.values()) if (e.open) consumer.attach(e);
    return consumer;
  }

  /** Closes every engine connection and stops following the center. */
  close(): void {
    clearInterval(this.timer);
    for (const e of this.engines.values()) e.close();
    this.engines.clear();
  }
}

export { CONN_METHODS };
