// Runs an example that has programs of its own: `bin/connmix single -f <dir>/connmix.yaml` plus each
// *.ts file in <dir> (its backend or publisher), which gets the config path as its argument and finds
// the engines through the center. Output of all of them goes to this terminal. Ctrl-C (or SIGTERM)
// stops them all; when one of them exits, the others are stopped too.
// Usage, from the repository root:  node_modules/.bin/bun examples/run.ts examples/backend-chat
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const dir = process.argv[2];
if (!dir || !existsSync(join(dir, "connmix.yaml"))) {
  console.error("usage: bun examples/run.ts <example directory with a connmix.yaml>");
  process.exit(2);
}
const config = join(dir, "connmix.yaml");
const connmix = join(import.meta.dir, "..", "bin", "connmix");
const programs = readdirSync(dir).filter((f) => f.endsWith(".ts")).sort();

const children: Subprocess[] = [Bun.spawn([connmix, "single", "-f", config], { stdio: ["ignore", "inherit", "inherit"] })];
for (const p of programs) {
  children.push(Bun.spawn([process.execPath, join(dir, p), config], { stdio: ["ignore", "inherit", "inherit"] }));
}

// Stops every child, then exits with `code`; later calls wait for the first one.
let stopping: Promise<never> | null = null;
function stop(code: number): Promise<never> {
  stopping ??= (async () => {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(children.map((c) => c.exited));
    process.exit(code);
  })();
  return stopping;
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
// A child that exits on its own (a port in use, a crash) ends the example.
const first = await Promise.race(children.map((c) => c.exited));
await stop(first || 1);
