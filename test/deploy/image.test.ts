// deploy/Dockerfile and deploy/systemd/connmix@.service, run without docker or systemd: the Dockerfile's
// steps are carried out in temp directories standing for the two stages (COPY from a copy of this
// checkout, RUN in the stage's WORKDIR; steps that change the machine are checked instead: apt-get
// install → the packages are installed), and the executable it produces is then started as the systemd
// unit's ExecStart says, as a center and an engine, and serves a client.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { versionLine } from "../../src/version.ts";
import { execForm, last, readDockerfile, type Instruction, type Stage } from "./dockerfile.ts";
import { cleanupAll, tempDir } from "../helpers/files.ts";
import { post } from "../helpers/http.ts";
import { Proc, ROOT } from "../helpers/process.ts";
import { Client } from "../helpers/ws.ts";
import { localConfig, localPorts } from "./local-config.ts";

afterAll(cleanupAll);

const UNIT = join(ROOT, "deploy/systemd/connmix@.service");
const work = tempDir("image");

/** A stage's filesystem: container path → a directory under work. */
function fsOf(stage: Stage, index: number) {
  const root = join(work, stage.name ?? `stage${index}`);
  return { root, path: (p: string) => join(root, p) };
}

/** Commands that change the machine rather than the image: checked or skipped, never run here. */
function machineStep(cmd: string): boolean {
  const install = /^apt-get install (.*)$/.exec(cmd);
  if (install) {
    for (const pkg of install[1]!.split(/\s+/).filter((w) => !w.startsWith("-"))) {
      const r = Bun.spawnSync(["dpkg-query", "-W", "-f=${Status}", pkg]);
      if (!r.stdout.toString().includes("install ok installed")) throw new Error(`Dockerfile installs ${pkg}, which is not installed here`);
    }
    return true;
  }
  return /^(apt-get update|rm -rf \/var\/lib\/apt\/lists\/\*|useradd |chown )/.test(cmd);
}

/** Docker's COPY: several sources or a trailing slash copy into a directory; a directory copies its contents. */
function copy(sources: string[], dest: string): void {
  const into = sources.length > 1 || dest.endsWith("/");
  for (const src of sources) {
    const to = into ? join(dest, basename(src)) : dest;
    mkdirSync(into ? dest : join(to, ".."), { recursive: true });
    cpSync(src, to, { recursive: true });
  }
}

/** What each RUN command printed, by command. */
type Outputs = Map<string, string>;

function runStages(stages: Stage[]): { outputs: Outputs; final: { dir: string; stage: Stage } } {
  const outputs: Outputs = new Map();
  const systems = stages.map(fsOf);
  let final = { dir: "", stage: stages.at(-1)! };
  stages.forEach((stage, i) => {
    const fs = systems[i]!;
    let workdir = "/";
    const step = (ins: Instruction) => {
      const where = `deploy/Dockerfile:${ins.line}`;
      if (ins.op === "WORKDIR") {
        workdir = posix.resolve(workdir, ins.args);
        mkdirSync(fs.path(workdir), { recursive: true });
      } else if (ins.op === "COPY") {
        const words = ins.args.split(/\s+/);
        const from = words[0]!.startsWith("--from=") ? words.shift()!.slice(7) : null;
        const dest = words.pop()!;
        const source = from ? systems[stages.findIndex((s) => s.name === from)]! : null;
        const sources = words.map((w) => (source ? source.path(w) : join(ROOT, w)));
        for (const s of sources) if (!existsSync(s)) throw new Error(`${where}: ${s} does not exist`);
        copy(sources, fs.path(posix.resolve(workdir, dest)) + (dest.endsWith("/") ? "/" : ""));
      } else if (ins.op === "RUN") {
        for (const cmd of ins.args.split(/\s*&&\s*/)) {
          if (machineStep(cmd)) continue;
          const r = Bun.spawnSync(["bash", "-c", cmd], {
            cwd: fs.path(workdir),
            env: { ...process.env, npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false" },
            timeout: 90_000,
          });
          const out = r.stdout.toString() + r.stderr.toString();
          outputs.set(cmd, out);
          if (r.exitCode !== 0) throw new Error(`${where}: ${cmd} exited with ${r.exitCode}:\n${out.slice(-2000)}`);
        }
      } else if (!["USER", "EXPOSE", "ENTRYPOINT", "CMD"].includes(ins.op)) {
        throw new Error(`${where}: ${ins.op} is not understood by this test; teach it`);
      }
    };
    stage.steps.forEach(step);
    final = { dir: fs.path(workdir), stage };
  });
  return { outputs, final };
}

let built: { dir: string; stage: Stage } | undefined;
const image = () => {
  if (!built) throw new Error("needs the image directory of the Dockerfile test above");
  return built;
};

describe("deploy/Dockerfile, step by step without docker", () => {
  test("npm ci, bun build.ts and the final stage produce an image directory whose ./connmix runs", () => {
    const { outputs, final } = runStages(readDockerfile());
    built = final;
    expect(outputs.get("node_modules/.bin/bun build.ts --binary-only")).toContain("build: connmix-linux-x64");
    // The final stage's own `./connmix version`, then the image's ENTRYPOINT with `version`:
    expect(outputs.get("./connmix version")).toContain(versionLine());
    const entry = execForm(last(final.stage, "ENTRYPOINT"));
    const r = Bun.spawnSync([...entry, "version"], { cwd: final.dir, timeout: 20_000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain(versionLine());
    for (const f of ["connmix", "conf/connmix.yaml", "lua/entry.websocket.lua", "logs"]) expect(existsSync(join(final.dir, f))).toBe(true);
    expect(statSync(join(final.dir, "connmix")).mode & 0o111).not.toBe(0);
  }, 120_000);
});

/** The unit's [Service] settings (the last value of each key). */
function unitSettings(): Record<string, string> {
  const text = readFileSync(UNIT, "utf8");
  const service = text.slice(text.indexOf("[Service]"), text.indexOf("[Install]"));
  const out: Record<string, string> = {};
  for (const line of service.split("\n")) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe("deploy/systemd/connmix@.service", () => {
  test("systemd-analyze verify accepts the unit", () => {
    const which = Bun.spawnSync(["which", "systemd-analyze"]);
    if (which.exitCode !== 0) return console.warn("systemd-analyze not installed: unit syntax not verified");
    const dir = tempDir("unit");
    // Pointed at an executable that exists here, under a name systemd can instantiate.
    writeFileSync(join(dir, "connmix@.service"), readFileSync(UNIT, "utf8").replaceAll("/opt/connmix", image().dir));
    const r = Bun.spawnSync(["systemd-analyze", "verify", "connmix@engine.service"], { cwd: dir, timeout: 20_000 });
    const out = r.stdout.toString() + r.stderr.toString();
    expect(out).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("ExecStart as center and as engine runs a working cluster from the image directory; ExecReload hands the engine over; KillSignal stops it with 0", async () => {
    const s = unitSettings();
    expect(s.WorkingDirectory).toBe("/opt/connmix");
    expect(s.KillSignal).toBe("SIGTERM");
    const cpus = /^CONNMIX_CPUS=(\d+)$/.exec(s.Environment!)![1]!;
    const dir = image().dir; // stands for /opt/connmix
    const ports = localPorts();
    const conf = join(dir, "conf/connmix.yaml");
    writeFileSync(conf, localConfig(readFileSync(conf, "utf8"), ports, "logs/connmix.log"));
    const command = (role: string, line = s.ExecStart!) =>
      line.replaceAll("%i", role).replaceAll("${CONNMIX_CPUS}", cpus).replaceAll("/opt/connmix", dir).split(" ");
    const center = new Proc("center", command("center"), { cwd: dir });
    await center.waitFor("start the registry server");
    const engine = new Proc("engine", command("engine"), { cwd: dir });
    await engine.waitFor("start the lua server");
    await center.waitFor(/register node 127\.0\.0\.1 node_id [0-9a-v]{20}/);

    const client = await Client.open(`ws://127.0.0.1:${ports.servers[0]}/chat`);
    client.send({ op: "join", room_id: 5 });
    expect(await client.json()).toEqual({ status: "success" });
    const r = await post(`http://127.0.0.1:${ports.api}/v1/mesh/publish`, { c: "room:5", d: "from the unit" });
    expect(r).toEqual({ E: null, r: { s: 1, f: 0 } });
    expect(await client.next()).toBe("from the unit");

    const timeout = Number(s.TimeoutStopSec) * 1000;
    // ExecReload: a successor serves, the old engine drains with the client still connected, then exits once it left.
    const reload = Bun.spawnSync(command("engine", s.ExecReload!), { cwd: dir, stdout: "pipe", stderr: "pipe", timeout: 70_000 });
    expect({ code: reload.exitCode, err: reload.stderr.toString() }).toEqual({ code: 0, err: "" });
    expect(reload.stdout.toString()).toMatch(/engine reloaded: pid \d+ serves/);
    const successor = Number(readFileSync(join(dir, "logs/connmix.engine.pid"), "utf8"));
    expect(await post(`http://127.0.0.1:${ports.api}/v1/mesh/publish`, { c: "room:5", d: "after the reload" })).toEqual({ E: null, r: { s: 1, f: 0 } });
    expect(await client.next()).toBe("after the reload");
    client.ws.close();
    expect(await engine.stop("SIGTERM", timeout)).toBe(0); // it exits by itself once the client left
    process.kill(successor, "SIGTERM");
    while (Bun.spawnSync(["kill", "-0", String(successor)]).exitCode === 0) await Bun.sleep(50);

    expect(await center.stop("SIGTERM", timeout)).toBe(0);
    expect(readFileSync(join(dir, "logs/connmix.log"), "utf8")).toContain("start the lua server");
  }, 60_000);
});
