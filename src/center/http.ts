// The center API: GET /version, GET /v1/nodes (the engines a backend should connect to), GET /metrics, and
// the web console (/console/, /v1/console/..., src/center/console.ts).
// Access control as on the engines (spec §8): these are reads.
import type { Server } from "bun";
import type { Config } from "../config/schema";
import { Access, REQUEST_REFUSAL_REASONS, type RequestRefusals } from "../access/access";
import { refusalSamples } from "../net/refusals";
import type { HotConfig } from "../config/hot";
import { CONTENT_TYPE, Registry, unlabeled as one } from "../metrics/registry";
import { addProcessMetrics } from "../metrics/process";
import { hostPart } from "./protocol";
import type { NodeEntry, RegistryServer } from "./registry";
import { ConsoleRoutes } from "./console";
import { Listeners } from "../net/listeners";
import { serveErrors } from "../net/http";
import type { NodeInfo, NodesReply } from "../api/protocol";

const JSON_HEADERS = { "content-type": "application/json" };

function centerMetrics(registry: RegistryServer, apiRefusals: RequestRefusals): Registry {
  const m = new Registry();
  m.counter("connmix_center_registry_channels_total", "Registry connections engines opened to this center.", [], one(() => registry.connectionsTotal));
  m.gauge("connmix_center_registry_clients", "Client connections on all registered engines, as of their last heartbeat.", [], one(() => registry.clients()));
  m.gauge("connmix_center_registry_engine_nodes", "Engine nodes registered with this center.", [], one(() => registry.nodes.size));
  m.counter(
    "connmix_center_registry_refused_total",
    "Registry connections of authenticated engines closed with an error (protocol, invalid, address_taken, no_index, not_reading, no_register).",
    ["reason"],
    () => Object.entries(registry.refused).map(([r, n]) => [[r], n]),
  );
  m.counter("connmix_center_refused_connections_total", "Connections the registry port refused before authentication.", ["listener", "reason"], () => refusalSamples(["registry"]));
  m.counter("connmix_center_api_refused_requests_total", "API requests refused by access control (401, 403, 429) or as too large (413).", ["reason"], () =>
    REQUEST_REFUSAL_REASONS.map((r) => [[r], apiRefusals[r]]),
  );
  addProcessMetrics(m);
  return m;
}

/** A registered engine as /v1/nodes (and the console) shows it. */
export const nodeInfo = (e: NodeEntry): NodeInfo => ({
  id: e.id,
  api_server: `${hostPart(e.ip)}:${e.api_port}`,
  mesh_point: `${hostPart(e.ip)}:${e.mesh_port}`,
  index: e.index,
  clients: e.clients,
  registered_at: Math.floor(e.registeredAt / 1000),
  state: e.draining ? "draining" : "registered",
});

function nodesJson(registry: RegistryServer): string {
  return JSON.stringify({ nodes: [...registry.nodes.values()].map(nodeInfo) } satisfies NodesReply);
}

export interface CenterApi {
  port: number;
  /** Closes the listeners and their connections, and stops following config edits. */
  stop(): Promise<void>;
}

/** `hot`: the process's hot config, which the access rules follow (none: they stay). */
export function startCenterApi(config: Config, registry: RegistryServer, hot?: HotConfig): CenterApi {
  const { bind, port, tls } = config.center.apiServer;
  const access = new Access(config.access, { label: "center API", sameOrigin: true, hot });
  const metrics = centerMetrics(registry, access.refused);
  const consoleRoutes = new ConsoleRoutes(registry, access);
  const fetch = (req: Request, srv: Server<undefined>): Response | Promise<Response> => {
    const ip = srv.requestIP(req)?.address ?? "";
    const denied = access.check(req, ip);
    if (denied) return denied;
    const path = new URL(req.url).pathname;
    const page = consoleRoutes.handle(req, path, ip);
    if (page) return page;
    const known = path === "/version" || path === "/v1/nodes" || path === "/metrics";
    if (!known) return new Response("not found\n", { status: 404 });
    if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    if (path === "/version") return new Response('{"apis":["v1"]}', { headers: JSON_HEADERS });
    if (path === "/v1/nodes") return new Response(nodesJson(registry), { headers: JSON_HEADERS });
    return new Response(metrics.text(), { headers: { "content-type": CONTENT_TYPE } });
  };
  let bound = port;
  const listeners = new Listeners<Server<undefined>>({
    tls,
    label: "center API",
    // reusePort: a successor (src/handover/ports.ts) or a new certificate's listener binds beside it.
    start: (pem) => Bun.serve({ hostname: bind, port: bound, reusePort: true, fetch, ...serveErrors("center API"), ...(pem && { tls: pem }) }),
    retire: (old) => old.stop(),
  });
  bound = listeners.current.port!;
  return {
    port: bound,
    async stop() {
      access.stop();
      listeners.close();
      await Promise.all(listeners.all.map((s) => s.stop(true)));
    },
  };
}
