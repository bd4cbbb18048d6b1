// The config keys an edit applies without a restart, each with what applies it, and the per-process table
// of the code that does (HotConfig): the modules that apply a hot key are handed the process's HotConfig at
// construction and follow their keys there. An edited key that is not declared hot needs a restart, and the
// reload says so; one declared hot that nothing in this process follows is logged as having no effect here.
// `[]` matches any list index, `.*` any key below.
import type { Config } from "./schema.ts";
import { log } from "../log/logger.ts";

export const HOT_KEYS = {
  "logging.level": "applied at once (config/hot.ts)",
  "access.*": "applied from the next API request (access/access.ts)",
  "cluster.secret[]": "applied to cluster links opened from now on; links that are up stay up (net/security.ts)",
  "cluster.secretFile": "applied to cluster links opened from now on; links that are up stay up (net/security.ts)",
  "engine.apiServer.readTimeout": "applied to /ws/v1 connections opened and HTTP requests arriving from now on (api/server.ts)",
  "engine.apiServer.writeTimeout": "applied at the next stall check of /ws/v1 connections (api/ws.ts)",
  "engine.servers[].readTimeout": "applied to that server's connections opened from now on (engine/lua-server.ts)",
  "engine.servers[].writeTimeout": "applied to that server's connections opened from now on (engine/lua-server.ts)",
} as const;
export type HotKey = keyof typeof HOT_KEYS;

/** Keys accepted for compatibility that do nothing here: an edit changes nothing, live or after a restart. */
export const INERT_KEYS: Readonly<Record<string, string>> = {
  "engine.apiServer.readBufferSize": "Bun sizes its socket buffers itself",
  "engine.apiServer.writeBufferSize": "a queue consumer is handed nothing while its socket is backed up (api/consumer.ts)",
  "engine.servers[].readBufferSize": "Bun sizes its socket buffers itself",
  "engine.servers[].writeBufferSize": "Bun sizes its socket buffers itself",
};

const pattern = (key: string) =>
  new RegExp("^" + key.replace(/[.[\]]/g, "\\$&").replace(/\\\[\\\]/g, "\\[\\d+\\]").replace(/\\\.\*$/, "\\..+") + "$");
const hot = (Object.keys(HOT_KEYS) as HotKey[]).map((k) => [pattern(k), k] as const);
const inert = Object.entries(INERT_KEYS).map(([k, why]) => [pattern(k), why] as const);

export type KeyClass = { kind: "hot"; key: HotKey; how: string } | { kind: "inert"; why: string } | { kind: "restart" };

/** What an edit of `key` (a path like engine.servers[0].readTimeout) does, by the declared tables. */
export function classifyKey(key: string): KeyClass {
  for (const [re, k] of hot) if (re.test(key)) return { kind: "hot", key: k, how: HOT_KEYS[k] };
  for (const [re, why] of inert) if (re.test(key)) return { kind: "inert", why };
  return { kind: "restart" };
}

/** Applies a good edit: the new config and the one it replaces. */
export type ConfigListener = (next: Config, prev: Config) => void;

/**
 * The code of one process that applies hot keys. Made once per process by its composition root and handed
 * to the modules that apply a key (they follow it here); the config watcher hands it every good edit.
 */
export class HotConfig {
  private readonly followers: { keys: readonly HotKey[]; fn: ConfigListener }[] = [];

  constructor() {
    // The watcher sets the level before its own lines too, so that they obey it; a worker has no watcher.
    this.follow(["logging.level"], (next) => log.setLevel(next.logging.level));
  }

  /** `fn` applies `keys`; it is called with every good edit (and compares what it applies). Returns the unfollow. */
  follow(keys: readonly HotKey[], fn: ConfigListener): () => void {
    const f = { keys, fn };
    this.followers.push(f);
    return () => {
      const i = this.followers.indexOf(f);
      if (i >= 0) this.followers.splice(i, 1);
    };
  }

  /** True when something in this process applies `key`. */
  follows(key: HotKey): boolean {
    return this.followers.some((f) => f.keys.includes(key));
  }

  /** Hands a good edit to every follower; one that throws is logged, the others still apply theirs. */
  apply(next: Config, prev: Config): void {
    for (const f of [...this.followers]) {
      try {
        f.fn(next, prev);
      } catch (e) {
        log.error(`applying config change: ${(e as Error).message}`);
      }
    }
  }

  /** What an edit of `key` does in this process: a hot key nothing here follows has no effect here. */
  classify(key: string): KeyClass {
    const c = classifyKey(key);
    if (c.kind === "hot" && !this.follows(c.key)) return { kind: "inert", why: "nothing in this process applies it" };
    return c;
  }
}
