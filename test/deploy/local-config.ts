// Configuration files for tests that run connmix as a user does, rewritten onto free loopback ports.
import { parseDocument } from "yaml";
import { freePorts } from "../helpers/ports.ts";

export interface LocalPorts {
  registry: number;
  center: number;
  mesh: number;
  api: number;
  /** One per engine.servers entry. */
  servers: number[];
}

/**
 * A connmix.yaml text with every listener moved to 127.0.0.1 on the given ports, the center registry
 * pointed at ours and the log written to `logFile`; everything else (comments included) as it was.
 * `edit` may change more (path → value).
 */
export function localConfig(text: string, ports: LocalPorts, logFile: string, edit: [string[], unknown][] = []): string {
  const doc = parseDocument(text);
  const listen = (path: string[], port: number) => {
    doc.setIn([...path, "port"], port);
    doc.setIn([...path, "bind"], "127.0.0.1");
  };
  listen(["center", "registry"], ports.registry);
  listen(["center", "apiServer"], ports.center);
  listen(["engine", "meshPoint"], ports.mesh);
  listen(["engine", "apiServer"], ports.api);
  doc.setIn(["engine", "centerRegistry"], `127.0.0.1:${ports.registry}`);
  const servers = doc.getIn(["engine", "servers"]) as { items: unknown[] };
  if (servers.items.length !== ports.servers.length) {
    throw new Error(`the config has ${servers.items.length} servers, ${ports.servers.length} ports given`);
  }
  ports.servers.forEach((p, i) => listen(["engine", "servers", String(i)], p));
  doc.setIn(["logging", "filename"], logFile);
  for (const [path, value] of edit) doc.setIn(path, value);
  return doc.toString();
}

export function localPorts(servers = 1): LocalPorts {
  const [registry, center, mesh, api, ...rest] = freePorts(4 + servers);
  return { registry: registry!, center: center!, mesh: mesh!, api: api!, servers: rest };
}
