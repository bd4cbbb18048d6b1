// One engine's /ws/v1 connection: requests with ids and deadlines, queue events handed on, and
// reconnection with exponential backoff (with jitter) for as long as the engine is listed by the center.
import type { Method, Methods, NodeInfo, QueueItem, Reply } from "../../src/api/protocol.ts";
import { ConnmixError, TRANSPORT } from "./errors.ts";
import type { SocketClass, SocketLike } from "./websocket.ts";

export interface EngineOptions {
  WebSocket: SocketClass;
  headers?: Record<string, string>;
  requestTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Each time the connection (re)opens: consumers pop their topics again. */
  onOpen: (engine: Engine) => void;
  onItem: (item: QueueItem, engine: Engine) => void;
  /** A connection attempt failed or an open connection closed; `retryMs` until the next attempt. */
  onDown: (engine: Engine, why: string, retryMs: number) => void;
}

interface Pending {
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

export class Engine {
  private ws: SocketLike | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failures = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private waiters: ((open: boolean) => void)[] = [];

  constructor(public node: NodeInfo, private readonly opts: EngineOptions) {
    this.connect();
  }

  get url(): string {
    return `ws://${this.node.api_server}/ws/v1`;
  }

  get open(): boolean {
    return this.ws !== null && this.ws.readyState === OPEN;
  }

  private connect(): void {
    if (this.closed) return;
    const ws = new this.opts.WebSocket(this.url, this.opts.headers ? { headers: this.opts.headers } : undefined);
    this.ws = ws;
    let why = "connection failed";
    ws.onopen = () => {
      this.failures = 0;
      for (const w of this.waiters.splice(0)) w(true);
      this.opts.onOpen(this);
    };
    ws.onmessage = (e) => this.receive(String(e.data));
    ws.onerror = (e) => {
      why = (e as { message?: string })?.message || why;
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failAll(`connection to engine ${this.node.api_server} closed`);
      if (this.closed) return;
      const delay = this.backoff();
      this.opts.onDown(this, e.code ? `closed (${e.code}${e.reason ? " " + e.reason : ""})` : why, delay);
      this.retry = setTimeout(() => this.connect(), delay);
    };
  }

  private backoff(): number {
    const base = Math.min(this.opts.backoffMinMs * 2 ** this.failures++, this.opts.backoffMaxMs);
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  private receive(text: string): void {
    let msg: Reply & { e?: string; p?: QueueItem };
    try {
      msg = JSON.parse(text);
    } catch {
      return; // not ours to answer: the engine only sends JSON
    }
    if (msg.e === "queue.pop" && msg.p) return this.opts.onItem(msg.p, this);
    const p = typeof msg.i === "number" ? this.pending.get(msg.i) : undefined;
    if (!p) return;
    this.pending.delete(msg.i as number);
    clearTimeout(p.timer);
    if (msg.E) p.reject(new ConnmixError(msg.E.c as ConnmixError["code"], msg.E.m));
    else p.resolve(msg.r);
  }

  /** Sends one request; rejects with the engine's error, or a transport error (code 0). */
  request<M extends Method>(m: M, p: Methods[M]["p"]): Promise<Methods[M]["r"]> {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return Promise.reject(new ConnmixError(TRANSPORT, `engine ${this.node.api_server} is not connected`));
    const i = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(i);
        reject(new ConnmixError(TRANSPORT, `${m}: no answer from engine ${this.node.api_server} within ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
      this.pending.set(i, { resolve: resolve as (r: unknown) => void, reject, timer });
      ws.send(JSON.stringify({ m, p, i }));
    });
  }

  /** Resolves once the connection is open (at once if it is); false after `ms`. */
  whenOpen(ms: number): Promise<boolean> {
    if (this.open) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (open: boolean) => {
        clearTimeout(timer);
        resolve(open);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      this.waiters.push(done);
    });
  }

  private failAll(why: string): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ConnmixError(TRANSPORT, why));
    }
    this.pending.clear();
  }

  /** The center no longer lists it, or the client stops: close for good. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    const ws = this.ws;
    this.ws = null;
    this.failAll(`engine ${this.node.api_server} left`);
    for (const w of this.waiters.splice(0)) w(false);
    ws?.close(1000);
  }
}
