// A temp lua/ root laid out like a release's (protocols/ and utils/ copied from this checkout) holding the
// given scripts, and a socket or websocket server started on it.
import { cpSync } from "node:fs";
import { join } from "node:path";
import { luaRoot, startEngine, type Started } from "../helpers/engine.ts";
import type { ServerConfig } from "../../src/config/index.ts";

const REPO_LUA = join(import.meta.dir, "..", "..", "lua");

/** Starts a server whose entry is `entry.lua` = `source`, in a lua/ root with protocols/ and utils/. */
export function startEntry(source: string, server: Partial<ServerConfig> = {}, more: Record<string, string> = {}): Promise<Started> {
  const root = luaRoot({ "entry.lua": source, ...more });
  cpSync(join(REPO_LUA, "utils"), join(root, "utils"), { recursive: true });
  return startEngine(join(root, "entry.lua"), { server });
}
