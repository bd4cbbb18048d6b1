// The API's HTTP side: POST /v1/mesh/send, POST /v1/mesh/publish, GET /metrics, GET /v1/introspect (for the
// console, src/center/console.ts), and the /ws/v1 upgrade.
// Every request passes access control first (write for POSTs and the upgrade, read for GETs).
// Status codes: 200 when the request was understood (the outcome is in "E"), 400 when it was not (101),
// 413 for a body over MAX_REQUEST_BYTES (also 101), 503 when the node is not ready (501: retry later),
// 401/403 from access control, 404 and 405 for routing.
import type { Server } from "bun";
import { CONTENT_TYPE } from "../metrics/registry";
import type { Access } from "../access/access";
import type { ApiSocket } from "./consumer";
import { readBody } from "../net/http";
import { ApiError, CODE, MAX_REQUEST_BYTES, TooLarge, errorJson, type Dispatcher } from "./dispatcher";

export interface HttpRoutes {
  dispatcher: Dispatcher;
  access: Access;
  /** The /metrics page. */
  metrics(): Promise<string>;
  /** The data of a new /ws/v1 connection from `address`. */
  newSocket(address: string): ApiSocket;
  /** GET /v1/introspect: what the console shows of this engine (JSON); `summary` without clients and log. */
  introspect(summary: boolean): Promise<string>;
}

const JSON_HEADERS = { "content-type": "application/json" };
const METRICS_HEADERS = { "content-type": CONTENT_TYPE };
const POSTS: Record<string, string> = { "/v1/mesh/send": "mesh.send", "/v1/mesh/publish": "mesh.publish" };

const json = (text: string, status = 200) => new Response(text, { status, headers: JSON_HEADERS });

/** The path of a request URL (`http://host:port/path?query`) without building a URL object. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

function failure(e: unknown, method: string): Response {
  const code = e instanceof ApiError ? e.code : 0;
  const status = e instanceof TooLarge ? 413 : code === CODE.invalidArgument ? 400 : code === CODE.notReady ? 503 : 200;
  return json(`{"E":${errorJson(e, method)}}`, status);
}

function tooLarge(routes: HttpRoutes, bytes: number, method: string, partial = false): Response {
  routes.access.refused.too_large++;
  // The rest of the body is not read: the connection cannot carry another request.
  const res = failure(new TooLarge(bytes, partial), method);
  if (partial) res.headers.set("connection", "close");
  return res;
}

async function call(routes: HttpRoutes, req: Request, method: string): Promise<Response> {
  let p: unknown;
  try {
    const body = await readBody(req, MAX_REQUEST_BYTES);
    if (typeof body !== "string") return tooLarge(routes, body.bytes, method, body.partial);
    p = JSON.parse(body);
  } catch (e) {
    return failure(new ApiError(CODE.invalidArgument, `malformed JSON: ${(e as Error).message}`), method);
  }
  try {
    return json(`{"E":null,"r":${await routes.dispatcher.call(method, p, null)}}`);
  } catch (e) {
    return failure(e, method);
  }
}

export function httpHandler(routes: HttpRoutes) {
  return (req: Request, srv: Server<ApiSocket>): Response | Promise<Response> | undefined => {
    const path = pathOf(req.url);
    const ip = srv.requestIP(req)?.address ?? "";
    if (path === "/ws/v1") {
      const denied = routes.access.check(req, ip, "write");
      if (denied) return denied;
      if (srv.upgrade(req, { data: routes.newSocket(ip) })) return undefined;
      return new Response("websocket upgrade required\n", { status: 426 });
    }
    const denied = routes.access.check(req, ip);
    if (denied) return denied;
    const method = POSTS[path];
    if (method) {
      if (req.method !== "POST") return new Response("method not allowed\n", { status: 405, headers: { allow: "POST" } });
      return call(routes, req, method);
    }
    if (path === "/v1/introspect") {
      if (req.method !== "GET") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
      return routes.introspect(req.url.endsWith("?summary=1")).then((view) => json(view));
    }
    if (path === "/metrics") {
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
      return routes.metrics().then((text) => new Response(text, { headers: METRICS_HEADERS }));
    }
    return new Response("not found\n", { status: 404 });
  };
}
