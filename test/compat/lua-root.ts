// A socket or websocket server started on a temp lua/ root laid out like a release's (protocols/ and
// utils/ copied from this checkout) holding the given scripts.
import { join } from "node:path";
import { luaRoot, startEngine, type Started } from "../helpers/engine.ts";
import type { ServerConfig } from "../../src/config/index.ts";

/** Starts a server whose entry is `entry.lua` = `source`, in a lua/ root with protocols/ and utils/. */
export function startEntry(source: string, server: Partial<ServerConfig> = {}, more: Record<string, string> = {}): Promise<Started> {
  return startEngine(join(luaRoot({ "entry.lua": source, ...more }), "entry.lua"), { server });
}
