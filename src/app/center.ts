// The center: the center API (GET /version, /v1/nodes, /metrics) and the registry engines register with.
import type { Config } from "../config/schema.ts";
import { log } from "../log/logger.ts";
import type { HotConfig } from "../config/hot.ts";
import { onShutdown } from "../lifecycle.ts";
import { checkFree } from "../handover/ports.ts";
import { startCenterApi } from "../center/http.ts";
import { RegistryServer, type NodeState } from "../center/registry.ts";
import { LINK_TIMINGS, timingsOf } from "../center/protocol.ts";
import { warnIfProtected, type ClusterSecurity } from "../net/security.ts";

function listening<T>(what: string, bind: string, port: number, start: () => T): T {
  try {
    return start();
  } catch (e) {
    throw new Error(`cannot start the ${what} on ${bind}:${port} (${(e as Error).message})`);
  }
}

export interface Center {
  /** The node table for a successor; this center stops (its engines reconnect to the successor). */
  handOver(): NodeState[];
}

/**
 * Starts the center API and the registry. A successor passes its predecessor's node table (`adopted`,
 * src/handover), so the engines that reconnect keep their entries and indexes.
 */
export function startCenter(config: Config, security: ClusterSecurity, hot: HotConfig, adopted: NodeState[] | null = null): Center {
  const { apiServer, registry: reg } = config.center;
  const registry = new RegistryServer({ keys: security.keys, tls: security.tls, timings: timingsOf(reg), link: LINK_TIMINGS });
  if (adopted) registry.adopt(adopted);
  const api = listening("center server", apiServer.bind, apiServer.port, () => {
    checkFree(apiServer.bind, apiServer.port);
    return startCenterApi(config, registry, hot);
  });
  const stopApi = () => api.stop();
  onShutdown("center server", stopApi);
  log.info(`start the center server ${apiServer.bind}:${apiServer.port}`);
  listening("registry server", reg.bind, reg.port, () => {
    checkFree(reg.bind, reg.port);
    registry.listen(reg.bind, reg.port);
  });
  onShutdown("registry server", () => registry.stop());
  log.info(`start the registry server (${reg.bind}:${reg.port})`);
  warnIfProtected(security, "registry");
  return {
    handOver() {
      const nodes = registry.snapshot();
      registry.stop();
      void stopApi();
      log.info(`center: handed ${nodes.length} nodes to the successor`);
      return nodes;
    },
  };
}
