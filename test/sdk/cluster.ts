// A real cluster for the SDK tests: a center and two engines (separate processes, `-p 1`) running an
// entry that answers "id", subscribes ("sub <channel>"), waits for a context value ("wait <key>") and
// pushes to queue "jobs" ("q <text>").
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { Client } from "../helpers/ws.ts";

export const ENTRY = `
function on_message(msg)
  local conn = mix.websocket()
  local cmd, arg = msg.data:match("^(%S+) ?(.*)$")
  if cmd == "id" then conn:send("id " .. string.format("%d", conn:client_id()))
  elseif cmd == "sub" then conn:subscribe(arg) conn:send("subscribed " .. arg)
  elseif cmd == "wait" then conn:send("value " .. tostring(conn:wait_context_value(arg)))
  elseif cmd == "q" then
    local n, err = mix.queue.push("jobs", arg)
    if err then conn:send("error " .. err) end
  end
end
`;

export class SdkCluster {
  readonly dir = new ClusterDir();
  center!: Node;
  engines: { node: Node; config: string; lua: number; api: number }[] = [];

  /** `extra`: YAML appended to every node's config (an access section, say); `cpus`: -p of engines a and b. */
  constructor(private readonly extra = "", private readonly cpus = ["1", "1"]) {}

  async start(): Promise<void> {
    writeFileSync(join(this.dir.dir, "lua/entry.lua"), ENTRY);
    const centerConfig = this.dir.center();
    appendFileSync(centerConfig, this.extra);
    this.center = new Node("center", centerConfig, this.dir.dir);
    await this.center.waitFor(/start the registry server/, 15_000);
    for (const [k, name] of ["a", "b"].entries()) {
      const [config, ports] = this.dir.engine(name);
      appendFileSync(config, this.extra);
      this.engines.push({ node: new Node("engine", config, this.dir.dir, this.cpus[k]), config, lua: ports.lua, api: ports.api });
    }
    await Promise.all(this.engines.map((e) => e.node.waitFor(/start the lua server/, 20_000)));
  }

  get centerUrl(): string {
    return `http://127.0.0.1:${this.dir.centerApi}`;
  }

  /** Restarts engine k (after a kill) with the same config and ports. */
  async restart(k: number): Promise<void> {
    const e = this.engines[k]!;
    e.node = new Node("engine", e.config, this.dir.dir, this.cpus[k]);
    await e.node.waitFor(/start the lua server/, 20_000);
  }

  /** A client of engine k with its id. */
  async client(k: number, options?: Bun.WebSocketOptions): Promise<[Client, string]> {
    const c = await Client.open(`ws://127.0.0.1:${this.engines[k]!.lua}/chat`, options);
    const reply = await c.ask("id");
    return [c, reply.slice(3)];
  }

  async stop(): Promise<void> {
    await Promise.all([...this.engines.map((e) => e.node.stop("SIGKILL").catch(() => {})), this.center?.stop("SIGKILL").catch(() => {})]);
    this.dir.remove();
  }
}

/** Waits until `cond()` holds (checked every 20 ms); fails after `ms` naming `what`. */
export async function eventually(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await Bun.sleep(20);
  }
}
