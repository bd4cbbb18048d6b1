import type { Config } from "../config/schema.ts";
import type { NodeOptions } from "../modes.ts";

// Placeholder: the center service (registry + center API) replaces this body.
export async function startCenter(_config: Config, _opts: NodeOptions): Promise<void> {}
