// Runs an example the way its README says: the README's command, verbatim, in a working directory laid
// out like the repository root (bin/, lua/, node_modules/, sdk/ and src/ link to this checkout; examples/ is a
// copy) in which the example's connmix.yaml listens on free loopback ports instead of the defaults.
import { cpSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { localConfig, localPorts, type LocalPorts } from "../deploy/local-config.ts";
import { tempDir } from "../helpers/files.ts";
import { Proc, ROOT } from "../helpers/process.ts";

export interface RunningExample {
  dir: string;
  ports: LocalPorts;
  /** The command from the README. */
  command: string;
  proc: Proc;
  /** ws://127.0.0.1:<lua port><path> */
  url: string;
  /** http://127.0.0.1:<engine api port> */
  api: string;
}

/** The README's command: the only line of its first ```sh block. */
export function readmeCommand(name: string): string {
  const readme = readFileSync(join(ROOT, "examples", name, "README.md"), "utf8");
  const block = /```sh\n([^\n]+)\n```/.exec(readme);
  if (!block) throw new Error(`examples/${name}/README.md has no one-line \`\`\`sh block`);
  return block[1]!;
}

/**
 * Starts the README command of examples/<name> and waits until its output contains `ready` and the Lua
 * server listens (an example's own program may be ready before it, on a loaded machine).
 */
export async function runExample(name: string, ready: string): Promise<RunningExample> {
  const ex = await startExample(name);
  await ex.proc.waitFor(ready, 20_000);
  await ex.proc.waitFor("start the lua server", 20_000);
  return ex;
}

export async function startExample(name: string, before?: (ports: LocalPorts) => void | Promise<void>): Promise<RunningExample> {
  const dir = tempDir(`example-${name}`);
  for (const link of ["bin", "lua", "node_modules", "sdk", "src"]) symlinkSync(join(ROOT, link), join(dir, link));
  cpSync(join(ROOT, "examples"), join(dir, "examples"), { recursive: true });
  const confPath = join(dir, "examples", name, "connmix.yaml");
  const text = readFileSync(confPath, "utf8");
  const conf = parse(text);
  const ports = localPorts(conf.engine.servers.length);
  writeFileSync(confPath, localConfig(text, ports, conf.logging.filename));
  await before?.(ports);
  const command = readmeCommand(name);
  const proc = new Proc(name, ["bash", "-c", `exec ${command}`], { cwd: dir });
  const path = conf.engine.servers[0].options.find((o: { name: string }) => o.name === "path").value;
  return { dir, ports, command, proc, url: `ws://127.0.0.1:${ports.servers[0]}${path}`, api: `http://127.0.0.1:${ports.api}` };
}

/** Ids of the processes whose working directory is `dir` (an example's workspace). */
export function processesIn(dir: string): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readlinkSync(`/proc/${p}/cwd`) === dir;
    } catch {
      return false; // gone, or not ours to look at
    }
  }).map(Number);
}
