// A Lua server started in-process (startLuaServers) on a free loopback port, running an entry script
// written to a temp `lua/` root that also holds the repository's lua/protocols and lua/utils, so that
// `require("protocols.text")` works as in a real install. cleanupAll stops it.
import { cpSync } from "node:fs";
import { join } from "node:path";
import { HotConfig, defaultConfig, defaultServer, type Config, type ServerConfig } from "../../src/config/index.ts";
import { startLuaServers, type Engine } from "../../src/engine/servers.ts";
import { onCleanup, tempDir, writeTree } from "./files.ts";
import { freePort } from "./ports.ts";

const REPO_LUA = join(import.meta.dir, "..", "..", "lua");

/** A temp `lua/` root holding `files` (name → source) and copies of lua/protocols and lua/utils, as a
 *  release's lua/ has them. Returns the root. */
export function luaRoot(files: Record<string, string>): string {
  const root = join(tempDir("e2e"), "lua");
  for (const dir of ["protocols", "utils"]) cpSync(join(REPO_LUA, dir), join(root, dir), { recursive: true });
  return writeTree(files, root);
}

export interface Started {
  config: Config;
  engine: Engine;
  port: number;
  /** ws://127.0.0.1:<port><path option, /chat by default> */
  url: string;
  /** The hot config the servers follow: `hot.apply(next, config)` is a config edit. */
  hot: HotConfig;
  /** Stops the engine (once, however often it is called). */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Lua server settings over bind 127.0.0.1, a free port, options [path /chat] and byteCodeExpires 0. */
  server?: Partial<ServerConfig>;
  /** Any other change to the configuration before the start. */
  edit?: (config: Config) => void;
  /** How often readTimeout and writeTimeout are checked, ms (production: 1000). */
  sweepMs?: number;
}

/** Starts one Lua server running `entry`: a path to a .lua file, or else the source text of one. */
export async function startEngine(entry: string, opts: StartOptions = {}): Promise<Started> {
  const isPath = entry.endsWith(".lua") && !entry.includes("\n");
  const file = isPath ? entry : join(luaRoot({ "entry.lua": entry }), "entry.lua");
  const port = freePort();
  const config = defaultConfig();
  const server: ServerConfig = {
    ...defaultServer(),
    bind: "127.0.0.1",
    port,
    options: [{ name: "path", value: "/chat" }],
    entry: file,
    byteCodeExpires: 0,
    ...opts.server,
  };
  config.engine.servers = [server];
  opts.edit?.(config);
  const hot = new HotConfig();
  const engine = await startLuaServers(config, 1, 0, { hot, sweepMs: opts.sweepMs });
  const path = server.options.find((o) => o.name === "path")?.value ?? "/chat";
  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= engine.stop());
  onCleanup(stop);
  return { config, engine, port, url: `ws://127.0.0.1:${port}${path}`, hot, stop };
}
