// An engine with its API server, started in-process on free loopback ports; HTTP helpers and a WebSocket
// client that can stop reading.
import { afterAll, beforeAll } from "bun:test";
import { connect, type Socket } from "node:net";
import type { AccessUser, Config, HotConfig } from "../../src/config/index.ts";
import type { Engine } from "../../src/engine/servers.ts";
import { API_TIMINGS, startApiServer, type ApiServer } from "../../src/api/server.ts";
import type { LoginLimitOptions } from "../../src/access/login-limit.ts";
import { startEngine } from "../helpers/engine.ts";
import { freePort } from "../helpers/ports.ts";
import { Client } from "../helpers/ws.ts";

export interface TestEngine {
  config: Config;
  engine: Engine;
  api: ApiServer;
  /** The hot config the servers and the API follow: `hot.apply(next, config)` is a config edit. */
  hot: HotConfig;
  /** ws://127.0.0.1:<lua port>/chat */
  chatUrl: string;
  /** http://127.0.0.1:<api port> */
  apiUrl: string;
  /** ws://127.0.0.1:<api port>/ws/v1 */
  apiWs: string;
  stop(): Promise<void>;
}

export interface EngineOptions {
  users?: AccessUser[];
  /** Failed-login limits of the API server (production defaults otherwise). */
  logins?: LoginLimitOptions;
  queue?: { topicSize: number; maxTopics: number };
  edit?: (config: Config) => void;
  /** How often the Lua servers check readTimeout and writeTimeout, ms (production: 1000). */
  sweepMs?: number;
}

/** startEngine (a websocket server on /chat running `entry`) plus startApiServer. */
export async function startTestEngine(entry: string, opts: EngineOptions = {}): Promise<TestEngine> {
  const e = await startEngine(entry, {
    sweepMs: opts.sweepMs,
    edit: (config) => {
      config.engine.apiServer = { ...config.engine.apiServer, bind: "127.0.0.1", port: freePort() };
      if (opts.users) config.access.users = opts.users;
      if (opts.queue) config.engine.luavm.queue = { ...config.engine.luavm.queue, ...opts.queue };
      opts.edit?.(config);
    },
  });
  // writeTimeout checked every 100 ms instead of every second.
  const api = await startApiServer(e.config, e.engine.node, { logins: opts.logins, hot: e.hot, timings: { ...API_TIMINGS, stallSweepMs: 100 } });
  return {
    config: e.config,
    engine: e.engine,
    api,
    hot: e.hot,
    chatUrl: e.url,
    apiUrl: `http://127.0.0.1:${api.port}`,
    apiWs: `ws://127.0.0.1:${api.port}/ws/v1`,
    async stop() {
      await api.stop();
      await e.stop();
    },
  };
}

/** The engine of a test file: started before its tests (the returned object is filled in then), stopped after them. */
export function useTestEngine(entry: string, opts: EngineOptions = {}): TestEngine {
  const e = {} as TestEngine;
  beforeAll(async () => {
    Object.assign(e, await startTestEngine(entry, opts));
  });
  afterAll(() => e.stop());
  return e;
}

/** A client of `url` whose entry answers "id" with the client id; returns it with that id. */
export async function idClient(url: string): Promise<[Client, string]> {
  const c = await Client.open(url);
  c.send("id");
  return [c, String(await c.next())];
}

export const basic = (user: string, password: string) => ({ authorization: `Basic ${btoa(`${user}:${password}`)}` });

/** Status code of a raw WebSocket upgrade request (what a refused /ws/v1 client sees). */
export async function upgradeStatus(port: number, path: string, headers: Record<string, string> = {}, hostname = "127.0.0.1"): Promise<number> {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const request =
    `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
  return new Promise((resolve, reject) => {
    let buf = "";
    Bun.connect({
      hostname,
      port,
      socket: {
        open(s) {
          s.write(request);
        },
        data(s, chunk) {
          buf += chunk.toString();
          const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
          if (m) {
            s.end();
            resolve(Number(m[1]));
          }
        },
        error(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });
}

/**
 * A minimal WebSocket client over node:net whose reading can be paused, so the server sees a peer that
 * takes nothing (its kernel buffers fill, then Bun's). Text frames; pings are answered as every WebSocket
 * library does.
 */
export class PausableClient {
  readonly messages: string[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private upgraded = false;

  private constructor(private readonly sock: Socket) {}

  static open(port: number, path: string): Promise<PausableClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, "127.0.0.1");
      const c = new PausableClient(sock);
      sock.on("error", reject);
      sock.on("close", () => (c.closed = true));
      sock.on("connect", () =>
        sock.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ),
      );
      sock.on("data", (chunk: Buffer) => {
        c.buf = Buffer.concat([c.buf, chunk]);
        if (!c.upgraded) {
          const end = c.buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          if (!c.buf.subarray(0, 13).toString().includes(" 101")) return reject(new Error(c.buf.toString()));
          c.upgraded = true;
          c.buf = c.buf.subarray(end + 4);
          resolve(c);
        }
        c.parse();
      });
    });
  }

  private parse(): void {
    let b = this.buf;
    for (;;) {
      if (b.length < 2) break;
      let len = b[1]! & 127;
      let h = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        h = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        h = 10;
      }
      if (b.length < h + len) break;
      const opcode = b[0]! & 15;
      if (opcode === 1) this.messages.push(b.subarray(h, h + len).toString());
      else if (opcode === 9) this.frame(0x8a, b.subarray(h, h + len));
      b = b.subarray(h + len);
    }
    this.buf = b;
  }

  send(text: string): void {
    this.frame(0x81, Buffer.from(text));
  }

  private frame(first: number, p: Buffer): void {
    const head = p.length < 126 ? Buffer.from([first, 0x80 | p.length]) : Buffer.from([first, 0x80 | 126, p.length >> 8, p.length & 255]);
    const mask = Buffer.from([1, 2, 3, 4]);
    this.sock.write(Buffer.concat([head, mask, p.map((x, i) => x ^ mask[i & 3]!)]));
  }

  pause(): void {
    this.sock.pause();
  }

  resume(): void {
    this.sock.resume();
  }

  close(): void {
    this.sock.destroy();
  }
}
