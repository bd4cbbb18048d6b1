// WebSocket clients for tests that keep every message they receive, in order (binary frames as Buffers):
// `Client` (Bun's WebSocket, messages awaited one by one) and `openWs` (the `ws` package's client, for
// fragments, custom pings and no-close-frame exits).
import WS from "ws";

export interface Closed {
  code: number;
  reason: string;
}

/** What a WebSocket has received so far, and how it closed. */
export interface Collected {
  received: (string | Buffer)[];
  closed: Closed | null;
}

/** Collects what `ws` (Bun's or the `ws` package's) receives; `changed` runs after every message and the close. */
export function collect(ws: WebSocket | WS, changed = () => {}): Collected {
  const out: Collected = { received: [], closed: null };
  if (ws instanceof WS) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      out.received.push(isBinary ? Buffer.from(data) : data.toString());
      changed();
    });
    ws.on("close", (code: number, reason: Buffer) => {
      out.closed = { code, reason: reason.toString() };
      changed();
    });
  } else {
    ws.binaryType = "nodebuffer";
    ws.addEventListener("message", (e: MessageEvent) => {
      out.received.push(e.data as string | Buffer);
      changed();
    });
    ws.addEventListener("close", (e: CloseEvent) => {
      out.closed = { code: e.code, reason: e.reason };
      changed();
    });
  }
  return out;
}

/** Opens a `ws` package client and waits for it to be open. */
export async function openWs(url: string, opts?: WS.ClientOptions): Promise<[WS, Collected]> {
  const ws = new WS(url, opts);
  const c = collect(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return [ws, c];
}

/** A Bun WebSocket whose messages are taken in order with next(), or looked at in `received`. */
export class Client implements Collected {
  private readonly got: Collected;
  private waiters: (() => void)[] = [];
  /** How many messages next() has taken. */
  private read = 0;

  private constructor(readonly ws: WebSocket) {
    this.got = collect(ws, () => {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  /** Opens `url` and waits for it to be open; `options` (Bun's `headers`, `tls`, `protocols`) go to the WebSocket. */
  static open(url: string, options?: Bun.WebSocketOptions): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const c = new Client(ws);
      ws.addEventListener("open", () => resolve(c));
      ws.addEventListener("error", (e) => reject(new Error(`cannot open ${url}: ${(e as ErrorEvent).message ?? "error"}`)));
    });
  }

  get received(): (string | Buffer)[] {
    return this.got.received;
  }

  get closed(): Closed | null {
    return this.got.closed;
  }

  /** Sends text or bytes as they are, anything else as JSON. */
  send(data: string | Uint8Array | object): void {
    this.ws.send(typeof data === "string" || data instanceof Uint8Array ? data : JSON.stringify(data));
  }

  /** Waits until `done()` holds, woken by each message and the close; fails after `ms` with `why()`. */
  private async settle(done: () => boolean, ms: number, why: () => string): Promise<void> {
    const end = Date.now() + ms;
    while (!done()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(why());
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  /** Waits until at least `n` messages have arrived in total; fails early when the connection closes. */
  async waitFor(n: number, ms = 5000): Promise<void> {
    await this.settle(() => this.received.length >= n || this.closed !== null, ms, () =>
      `got ${this.received.length} of ${n} messages within ${ms} ms: ${JSON.stringify(this.received.slice(-3).map(String))}`);
    if (this.received.length < n) {
      throw new Error(`closed (${this.closed!.code} ${this.closed!.reason}) after ${this.received.length} of ${n} messages`);
    }
  }

  /** The next message not yet taken. */
  async next(ms = 5000): Promise<string | Buffer> {
    await this.waitFor(this.read + 1, ms);
    return this.received[this.read++]!;
  }

  /** The next message, parsed as JSON. */
  async json(ms = 5000): Promise<any> {
    return JSON.parse(String(await this.next(ms)));
  }

  /** Sends `data` and returns the next message, which must be text. */
  async ask(data: string | object, ms = 5000): Promise<string> {
    this.send(data);
    const m = await this.next(ms);
    if (typeof m !== "string") throw new Error(`expected a text message, got ${m.length} binary bytes`);
    return m;
  }

  /** Takes messages (parsed when they are JSON) until one satisfies `match`, and returns it. */
  async until(match: (m: any) => boolean, ms = 5000): Promise<any> {
    const end = Date.now() + ms;
    for (;;) {
      const raw = String(await this.next(Math.max(1, end - Date.now())));
      let m: unknown = raw;
      try {
        m = JSON.parse(raw);
      } catch {}
      if (match(m)) return m;
    }
  }

  /** Sends a /ws/v1 request and returns the response with the same id (other messages stay for next()). */
  async call(m: string, p: unknown, i: unknown = Math.floor(Math.random() * 1e9), ms = 5000): Promise<any> {
    this.send({ m, p, i });
    const id = JSON.stringify(i);
    const end = Date.now() + ms;
    for (;;) {
      const found = this.received.slice(this.read).findIndex((t) => {
        const v = JSON.parse(String(t));
        return "E" in v && JSON.stringify(v.i) === id;
      });
      if (found >= 0) return JSON.parse(String(this.received.splice(this.read + found, 1)[0]));
      await this.waitFor(this.received.length + 1, end - Date.now());
    }
  }

  async waitClosed(ms = 5000): Promise<Closed> {
    await this.settle(() => this.closed !== null, ms, () => `still open after ${ms} ms`);
    return this.closed!;
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}
