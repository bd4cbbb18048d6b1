import type { Config } from "../config/schema.ts";
import type { NodeOptions } from "../modes.ts";

// Placeholder: the engine service (mesh point, API server, Lua servers) replaces this body.
export async function startEngine(_config: Config, _opts: NodeOptions): Promise<void> {}
