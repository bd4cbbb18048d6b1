// Shared by the benchmark scripts: free ports, starting connmix and the raw-Bun reference server,
// running the shared load generator, and printing results as ratios measured in the same run.
import { spawn, type Subprocess } from "bun";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..");
export const SHARED_BENCH = resolve(ROOT, "../shared/bench");
export const BUN = process.execPath;

export async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function waitForPort(port: number, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Starts `connmix single` with one websocket server running `entry` (Lua source); returns its ports. */
export async function startConnmix(entry: string, extraYaml = "", luaBind = "127.0.0.1") {
  const dir = mkdtempSync(join(tmpdir(), "connmix-bench-"));
  const [lua, api, registry, center, mesh] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  writeFileSync(join(dir, "entry.lua"), entry);
  writeFileSync(join(dir, "connmix.yaml"), `
logging: { filename: ${dir}/connmix.log, level: warn }
center: { registry: { port: ${registry}, bind: 127.0.0.1 }, apiServer: { port: ${center}, bind: 127.0.0.1 } }
engine:
  centerRegistry: 127.0.0.1:${registry}
  meshPoint: { port: ${mesh}, bind: 127.0.0.1 }
  apiServer: { port: ${api}, bind: 127.0.0.1 }
  servers:
    - { port: ${lua}, bind: ${luaBind}, protocol: websocket, options: [{ name: path, value: /chat }], entry: ${dir}/entry.lua, byteCodeExpires: 0 }
${extraYaml}`);
  const proc = spawn([BUN, join(ROOT, "src/main.ts"), "single", "-f", join(dir, "connmix.yaml"), "-p", "1"], { cwd: dir, stdout: "ignore", stderr: "inherit" });
  await waitForPort(lua);
  return { proc, lua, api, url: `ws://127.0.0.1:${lua}/chat` };
}

/** Starts ../shared/bench/raw-bun-echo.ts, the ceiling for this stack. */
export async function startRawBun() {
  const port = await freePort();
  const proc = spawn([BUN, join(SHARED_BENCH, "raw-bun-echo.ts")], { env: { ...process.env, PORT: String(port) }, stdout: "ignore", stderr: "inherit" });
  await waitForPort(port);
  return { proc, port, url: `ws://127.0.0.1:${port}/` };
}

/** Runs ../shared/bench/wsload.ts and returns its JSON line. */
export async function wsload(args: string[]): Promise<Record<string, number | string | boolean>> {
  const p = spawn([BUN, join(SHARED_BENCH, "wsload.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim().split("\n").pop()!);
}

export function stop(...procs: Subprocess[]): void {
  for (const p of procs) p.kill("SIGTERM");
}
