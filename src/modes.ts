// What each command runs: center, engine, or both in one process (dev, single).
import { startCenter } from "./center/index.ts";
import type { Config } from "./config/schema.ts";
import { startEngine } from "./engine/index.ts";
import { onShutdown } from "./lifecycle.ts";

export type Mode = "center" | "engine" | "dev" | "single";
export const MODES: readonly Mode[] = ["center", "engine", "dev", "single"];

export interface NodeOptions {
  cpus: number; // after -p clamping; at least 1
  configPath: string; // as given on the command line, for messages and hot reload
}

export async function runMode(mode: Mode, config: Config, opts: NodeOptions): Promise<void> {
  // A node runs until it is signalled, even while no service holds the event loop
  // (an engine waiting for its center, for instance).
  const keepAlive = setInterval(() => {}, 1 << 30);
  onShutdown("keep-alive", () => clearInterval(keepAlive));
  if (mode !== "engine") await startCenter(config, opts);
  if (mode !== "center") await startEngine(config, opts);
}
