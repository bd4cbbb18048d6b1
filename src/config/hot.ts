// The config keys an edit applies without a restart, each with what applies it (and when). An edited key
// that is not here needs a restart, and the reload says so. `[]` matches any list index, `.*` any key below.
export const HOT_KEYS: Readonly<Record<string, string>> = {
  "logging.level": "applied at once (config/watch.ts)",
  "access.*": "applied from the next API request (access/access.ts)",
  "cluster.secret[]": "applied to cluster links opened from now on; links that are up stay up (net/security.ts)",
  "cluster.secretFile": "applied to cluster links opened from now on; links that are up stay up (net/security.ts)",
  "engine.apiServer.readTimeout": "applied to API connections opened from now on (api/server.ts)",
  "engine.apiServer.writeTimeout": "applied at the next stall check of /ws/v1 connections (api/ws.ts)",
  "engine.servers[].readTimeout": "applied to that server's connections opened from now on (engine/lua-server.ts)",
  "engine.servers[].writeTimeout": "applied to that server's connections opened from now on (engine/lua-server.ts)",
};

/** Keys accepted for compatibility that do nothing here: an edit changes nothing, live or after a restart. */
export const INERT_KEYS: Readonly<Record<string, string>> = {
  "engine.apiServer.readBufferSize": "Bun sizes its socket buffers itself",
  "engine.apiServer.writeBufferSize": "a queue consumer is handed nothing while its socket is backed up (api/consumer.ts)",
  "engine.servers[].readBufferSize": "Bun sizes its socket buffers itself",
  "engine.servers[].writeBufferSize": "Bun sizes its socket buffers itself",
};

const pattern = (key: string) =>
  new RegExp("^" + key.replace(/[.[\]]/g, "\\$&").replace(/\\\[\\\]/g, "\\[\\d+\\]").replace(/\\\.\*$/, "\\..+") + "$");
const hot = Object.entries(HOT_KEYS).map(([k, how]) => [pattern(k), how] as const);
const inert = Object.entries(INERT_KEYS).map(([k, why]) => [pattern(k), why] as const);

export type KeyClass = { kind: "hot"; how: string } | { kind: "inert"; why: string } | { kind: "restart" };

/** What an edit of `key` (a path like engine.servers[0].readTimeout) does. */
export function classifyKey(key: string): KeyClass {
  for (const [re, how] of hot) if (re.test(key)) return { kind: "hot", how };
  for (const [re, why] of inert) if (re.test(key)) return { kind: "inert", why };
  return { kind: "restart" };
}
