// What each command runs: center, engine, or both in one process (dev, single).
import { startCenter, type Center } from "./center.ts";
import type { Config, Mode } from "../config/schema.ts";
import type { HotConfig } from "../config/hot.ts";
import { startEngine, type EngineService } from "./engine.ts";
import { predecessor, predecessorCenter, tellPredecessor } from "../handover/predecessor.ts";
import { onShutdown } from "../lifecycle.ts";
import { pidFilePath, writePidFile } from "../handover/pidfile.ts";
import { clusterSecurity } from "../net/security.ts";
import { notifySystemd } from "../handover/systemd.ts";

export interface NodeOptions {
  cpus: number; // after -p clamping; at least 1
  configPath: string; // as given on the command line, for messages and hot reload
  /** This process's hot config, which the config watcher feeds and the parts that apply hot keys follow. */
  hot: HotConfig;
}

/** What a running node hands over to a successor (src/handover). */
export interface NodeParts {
  center: Center | null;
  engine: EngineService | null;
}

/** Longest a successor waits for its predecessor's center table before starting with an empty one. */
const CENTER_STATE_MS = 5000;

export async function runMode(mode: Mode, config: Config, opts: NodeOptions): Promise<NodeParts> {
  // A node runs until it is signalled, even while no service holds the event loop
  // (an engine waiting for its center, for instance).
  const keepAlive = setInterval(() => {}, 1 << 30);
  onShutdown("keep-alive", () => clearInterval(keepAlive));
  // What every cluster link of this process authenticates with (cluster.secret, cluster.tls).
  const security = clusterSecurity(config, opts.hot);
  onShutdown("cluster security", () => security.stop());
  const hasCenter = mode !== "engine";
  // A successor's center opens only once its predecessor's center handed over its table and closed: until
  // then its own engine (dev, single) registers with the predecessor's, which the table then includes.
  let center = hasCenter && !predecessor ? startCenter(config, security, opts.hot) : null;
  const engine = mode !== "center" ? await startEngine(config, opts, security) : null;
  writePidFile(pidFilePath(config, mode));
  notifySystemd(`READY=1\nMAINPID=${process.pid}`);
  if (predecessor) {
    tellPredecessor({ t: "ready", node: engine?.nodeId ?? null });
    if (hasCenter) center = startCenter(config, security, opts.hot, await predecessorCenter(CENTER_STATE_MS));
  }
  return { center, engine };
}
