// The engine's API server (spec §5): one Bun.serve for the HTTP routes, /ws/v1 and /metrics, with access
// control that follows the config file. Limits: requests up to MAX_REQUEST_BYTES (1 MiB) are read,
// larger ones get a 101 error; /ws/v1 connections idle for readTimeout are closed (Bun pings idle
// clients, and their pongs count), and one whose peer takes nothing for writeTimeout is dropped. Queue
// consumers get flow control (consumer.ts).
import type { Server } from "bun";
import type { ApiServerConfig, Config } from "../config/schema";
import type { HotConfig } from "../config/hot";
import type { NodeView } from "../engine/node";
import { log } from "../log/logger";
import { engineMetrics } from "../metrics/engine";
import { Access } from "../access/access";
import type { LoginLimitOptions } from "../access/login-limit";
import { ApiSocket } from "./consumer";
import { Dispatcher, HARD_LIMIT_BYTES } from "./dispatcher";
import { httpHandler } from "./http";
import { introspect } from "../engine/introspect";
import { ApiWebSockets, STALL_SWEEP_MS } from "./ws";
import { checkFree } from "../handover/ports";
import { steerToSuccessor } from "../handover/steer";
import { Listeners } from "../net/listeners";
import { serveErrors } from "../net/http";

/** Bun's HTTP idle timeout is at most 255 s. */
const MAX_HTTP_IDLE = 255;


export interface ApiServer {
  port: number;
  /**
   * A handover: stops accepting (the successor listens on the same port) and closes the /ws/v1 connections with
   * 1012, so backends reconnect there; requests in progress are answered.
   */
  drain(): void;
  stop(): Promise<void>;
}

/** The API server's timings, ms (API_TIMINGS in production; tests shorten them). */
export interface ApiTimings {
  /** How long a draining API server answers with `Connection: close` before it closes its listener. */
  drainGraceMs: number;
  /** How often /ws/v1 connections whose writes back up are checked against writeTimeout. */
  stallSweepMs: number;
  /** How long /metrics waits for Redis's queue stream lengths (the Redis queue backend). */
  metricsRedisMs: number;
}

export const API_TIMINGS: Readonly<ApiTimings> = { drainGraceMs: 1000, stallSweepMs: STALL_SWEEP_MS, metricsRedisMs: 1000 };

const handingOver = () =>
  new Response("this engine is handing over to its successor: connect again\n", { status: 503, headers: { connection: "close", "retry-after": "0" } });

const closeAfter = (res: Response | undefined) => {
  res?.headers.set("connection", "close");
  return res;
};

const httpIdle = (s: ApiServerConfig) => Math.min(Math.max(0, Math.round(s.readTimeout)), MAX_HTTP_IDLE);

export interface ApiServerOptions {
  /** Bounds of failed logins (production defaults in login-limit.ts; tests shrink them). */
  logins?: LoginLimitOptions;
  /** The process's hot config: access and apiServer timeouts follow edits (none: they stay). */
  hot?: HotConfig;
  timings?: ApiTimings;
}

export async function startApiServer(config: Config, node: NodeView, opts: ApiServerOptions = {}): Promise<ApiServer> {
  let settings = config.engine.apiServer;
  const access = new Access(config.access, { label: "engine API", logins: opts.logins, hot: opts.hot });
  let listeners: Listeners<Server<ApiSocket>> | undefined;
  let fetch: ReturnType<typeof httpHandler> | undefined;
  const applies = ["engine.apiServer.readTimeout", "engine.apiServer.writeTimeout"] as const;
  const unfollowSettings = opts.hot?.follow(applies, (next) => {
    const reread = next.engine.apiServer.readTimeout !== settings.readTimeout;
    settings = next.engine.apiServer;
    // Bun applies a reload's WebSocket idle timeout to the connections it accepts after it; its HTTP idle
    // timeout stays the listener's, so HTTP requests get the new one from fetch (server.timeout).
    if (!reread || !listeners || !fetch) return;
    for (const server of listeners.all) server.reload({ fetch, websocket: sockets.handler, idleTimeout: httpIdle(settings) } as Parameters<typeof server.reload>[0]);
  }) ?? (() => {});
  const metrics = engineMetrics(node, config.prometheus.summary, { forwardProtocol: config.engine.servers[0]?.protocol, apiRefusals: access.refused });
  const dispatcher = new Dispatcher(node, metrics);
  const timings = opts.timings ?? API_TIMINGS;
  const sockets = new ApiWebSockets(dispatcher, () => settings, access.refused, timings.stallSweepMs);

  const routes = httpHandler({
    dispatcher,
    access,
    metrics: () => metrics.page(timings.metricsRedisMs),
    newSocket: (address) => new ApiSocket(node.queues, node, address),
    introspect: (summary) => introspect(node, config, summary),
  });
  /** The HTTP idle timeout each listener was started with (its own for good: Bun's reload keeps it). */
  const startedIdle = new Map<Server<ApiSocket>, number>();
  fetch = (req, srv) => {
    const idle = httpIdle(settings);
    if (startedIdle.get(srv) !== idle) srv.timeout(req, idle); // readTimeout was edited since
    return routes(req, srv);
  };
  let port = settings.port;
  try {
    checkFree(settings.bind, settings.port);
    listeners = new Listeners<Server<ApiSocket>>({
      tls: settings.tls,
      label: "engine API",
      start: (pem) => {
        const idle = httpIdle(settings);
        const server = Bun.serve<ApiSocket>({
          hostname: settings.bind,
          port,
          reusePort: true, // a successor (src/handover/ports.ts) or a new certificate's listener binds beside it
          idleTimeout: idle,
          maxRequestBodySize: HARD_LIMIT_BYTES,
          fetch: fetch!,
          websocket: sockets.handler,
          ...serveErrors("engine API"),
          ...(pem && { tls: pem }),
        });
        startedIdle.set(server, idle);
        return server;
      },
      retire: (old) => {
        startedIdle.delete(old);
        return old.stop(); // not forced: its requests and /ws/v1 connections go on
      },
    });
  } catch (e) {
    access.stop();
    unfollowSettings();
    sockets.close();
    throw new Error(`cannot listen on ${settings.bind}:${settings.port} (${(e as Error).message})`);
  }
  const all = listeners.all;
  port = listeners.current.port!;
  log.info(`start the api server (${settings.bind}:${port})`);
  return {
    port,
    drain() {
      sockets.close(1012, "service restart");
      // Closing the listener also closes idle kept-alive connections, and one whose next request is already on
      // its way would be reset. So for drainGraceMs every request is answered with `Connection: close` (the
      // client opens its next connection, which the kernel may give to either process), then the listener
      // closes, leaving only connections idle for that long. A /ws/v1 upgrade meanwhile gets 503: connect again.
      listeners!.close(); // no new certificate's listener from now on
      const handler = fetch!;
      const closing = (req: Request, srv: Server<ApiSocket>) =>
        req.headers.has("upgrade") ? handingOver() : Promise.resolve(handler(req, srv)).then(closeAfter);
      for (const server of all) server.reload({ fetch: closing, websocket: sockets.handler } as Parameters<typeof server.reload>[0]);
      steerToSuccessor(port); // new connections go to the successor from now on (src/handover/steer.ts)
      // stop() resolves once the last connection closed; nothing waits for that.
      setTimeout(() => all.forEach((server) => void server.stop()), timings.drainGraceMs);
    },
    async stop() {
      access.stop();
      unfollowSettings();
      sockets.close();
      listeners!.close();
      await Promise.all(all.map((server) => server.stop(true)));
    },
  };
}
