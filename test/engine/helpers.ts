// End-to-end helpers: Lua servers started in-process with startLuaServers on free loopback ports, entry
// scripts written to temp dirs (with the repository's lua/protocols available to `require`), and raw TCP
// clients.
import { cpSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { defaultConfig, defaultServer, type ServerConfig } from "../../src/config/index.ts";
import { startLuaServers, type Engine } from "../../src/engine/index.ts";
import { tempDir, writeTree } from "../helpers/files.ts";
import { freePort } from "../helpers/ports.ts";
import { until } from "../helpers/wait.ts";

const REPO_LUA = join(import.meta.dir, "..", "..", "lua");

/**
 * A temp `lua/` root holding `files` (name → source) and a copy of the repository's lua/protocols, so
 * `require("protocols.text")` works as in a real install. Returns the root.
 */
export function luaRoot(files: Record<string, string>): string {
  const root = join(tempDir("e2e"), "lua");
  cpSync(join(REPO_LUA, "protocols"), join(root, "protocols"), { recursive: true });
  return writeTree(files, root);
}

export interface Started {
  engine: Engine;
  port: number;
  /** ws://127.0.0.1:<port><path> for websocket servers. */
  url: string;
  stop(): Promise<void>;
}

/** Starts one Lua server running `entry`: a path to a .lua file, or else the source text of one. */
export async function startServer(entry: string, cfg: Partial<ServerConfig> = {}): Promise<Started> {
  const isPath = entry.endsWith(".lua") && !entry.includes("\n");
  const file = isPath ? entry : join(luaRoot({ "entry.lua": entry }), "entry.lua");
  const port = freePort();
  const config = defaultConfig();
  const path = cfg.options?.find((o) => o.name === "path")?.value ?? "/chat";
  config.engine.servers = [{
    ...defaultServer(),
    bind: "127.0.0.1",
    port,
    options: [{ name: "path", value: path }],
    entry: file,
    byteCodeExpires: 0,
    readTimeout: 5,
    writeTimeout: 2,
    ...cfg,
  }];
  const engine = await startLuaServers(config, 1);
  return { engine, port, url: `ws://127.0.0.1:${port}${path}`, stop: () => engine.stop() };
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
