// The center: the center API (GET /version, /v1/nodes, /metrics) and the registry engines register with.
import type { Config } from "../config/schema.ts";
import type { NodeOptions } from "../modes.ts";
import { log } from "../log/logger.ts";
import { onShutdown } from "../lifecycle.ts";
import { startCenterApi } from "./api.ts";
import { RegistryServer } from "./registry.ts";

function listening<T>(what: string, bind: string, port: number, start: () => T): T {
  try {
    return start();
  } catch (e) {
    throw new Error(`cannot start the ${what} on ${bind}:${port} (${(e as Error).message})`);
  }
}

export async function startCenter(config: Config, _opts: NodeOptions): Promise<void> {
  const { apiServer, registry: reg } = config.center;
  const registry = new RegistryServer();
  const api = listening("center server", apiServer.bind, apiServer.port, () => startCenterApi(config, registry));
  onShutdown("center server", () => api.server.stop(true));
  onShutdown("center access", api.access.follow());
  log.info(`start the center server ${apiServer.bind}:${apiServer.port}`);
  listening("registry server", reg.bind, reg.port, () => registry.listen(reg.bind, reg.port));
  onShutdown("registry server", () => registry.stop());
  log.info(`start the registry server (${reg.bind}:${reg.port})`);
}
