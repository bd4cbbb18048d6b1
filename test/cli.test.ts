// The command line as a user meets it: real `bun src/main.ts` processes in a temp working directory.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { bannerText } from "../src/cli/banner.ts";
import { versionLine } from "../src/version.ts";
import { cleanupAll, tempDir } from "./helpers/files.ts";
import { freePorts } from "./helpers/ports.ts";
import { BUN, MAIN, Proc, runSync } from "./helpers/process.ts";

const work = tempDir("cli");
const device = availableParallelism();
const LOG_LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\t(DEBUG|INFO|WARN|ERROR)\t[^\t]+\t/;
afterAll(cleanupAll);

mkdirSync(join(work, "lua"));
writeFileSync(join(work, "lua/entry.lua"), "");

// A config of its own (free ports, its own log file) in the shared working directory.
let n = 0;
function writeConfig(extra = ""): { conf: string; logFile: string } {
  const [a, b, c, d, e] = freePorts(5);
  const id = n++;
  const conf = `c${id}.yaml`;
  writeFileSync(
    join(work, conf),
    `logging: { filename: logs/${id}/connmix.log, level: debug }\n` +
      `center:\n  registry: { port: ${a}, bind: 127.0.0.1 }\n  apiServer: { port: ${b}, bind: 127.0.0.1 }\n` +
      `engine:\n  centerRegistry: 127.0.0.1:${a}\n  meshPoint: { port: ${c}, bind: 127.0.0.1 }\n` +
      `  apiServer: { port: ${d}, bind: 127.0.0.1 }\n` +
      `  servers:\n    - { port: ${e}, bind: 127.0.0.1, entry: lua/entry.lua, options: [{ name: path, value: /chat }] }\n` +
      extra,
  );
  return { conf, logFile: join(work, `logs/${id}/connmix.log`) };
}

const runCli = (args: string[]) => runSync([BUN, MAIN, ...args], work, 20_000);

// Starts a node and waits until its stdout contains `until`; returns the process and its stdout so far.
async function start(args: string[], until: string): Promise<{ proc: Proc; out: string }> {
  const proc = new Proc(args[0]!, [BUN, MAIN, ...args], { cwd: work });
  await proc.waitFor(until, 10_000);
  return { proc, out: proc.stdout };
}

// Stops a node with `signal`: its exit code and how long it took.
async function stop(proc: Proc, signal: "SIGTERM" | "SIGINT"): Promise<{ code: number; ms: number }> {
  const t0 = Date.now();
  const code = await proc.stop(signal);
  return { code, ms: Date.now() - t0 };
}

describe("starting a node", () => {
  test("dev prints the banner, the version line and the -p warning; SIGTERM stops it cleanly", async () => {
    const { conf, logFile } = writeConfig();
    const warning = `cpu underutilized, max_procs: 1, device_cpus: ${device}`;
    const { proc, out } = await start(["dev", "-f", conf, "-p", "1"], device > 1 ? warning : versionLine());
    try {
      expect(out.startsWith(bannerText())).toBe(true);
      expect(out).toContain("\n _________________________________________________________________________________________________         \n");
      expect(out).toContain(`\n        ${versionLine()}\n\n`);
      expect(versionLine()).toMatch(/^connmix\d+\.\d+\.\d+, bun\d+\.\d+\.\d+, lua5\.1\+bitop, \w+, \w+$/);
      const logLines = out.slice(bannerText().length).split("\n").filter(Boolean);
      for (const line of logLines) expect(line).toMatch(LOG_LINE);
      if (device > 1) expect(logLines.find((l) => l.endsWith(warning))).toMatch(/\tWARN\tcli\/index\.ts:\d+\t/);
    } finally {
      const { code, ms } = await stop(proc, "SIGTERM");
      expect(code).toBe(0);
      expect(ms).toBeLessThan(6000);
    }
    // Everything logged up to the exit reached the file.
    const logged = readFileSync(logFile, "utf8");
    expect(logged).toContain("\tINFO\tsrc/lifecycle.ts:");
    expect(logged).toContain("received SIGTERM, shutting down");
    expect(logged.trimEnd().endsWith("\tstopped")).toBe(true);
    if (device > 1) expect(logged).toContain(warning);
  });

  test("-p above the machine's CPUs is clamped with a warning; SIGINT also stops cleanly", async () => {
    const { conf } = writeConfig();
    const warning = `max_procs: 9999 exceeds device_cpus: ${device}, using ${device}`;
    const { proc, out } = await start(["center", "--file", conf, "--cpus", "9999"], warning);
    try {
      expect(out).toContain(`\tWARN\t`);
      expect(out).toContain(warning);
      expect(out).not.toContain("cpu underutilized");
    } finally {
      expect((await stop(proc, "SIGINT")).code).toBe(0);
    }
  });

  test("a center does not need the Lua entry files", async () => {
    const { conf } = writeConfig();
    writeFileSync(join(work, conf), readFileSync(join(work, conf), "utf8").replace("lua/entry.lua", "lua/missing.lua"));
    const { proc, out } = await start(["center", "-f", conf], versionLine());
    try {
      expect(out).toContain(versionLine());
    } finally {
      expect((await stop(proc, "SIGTERM")).code).toBe(0);
    }
  });
});

describe("errors", () => {
  const usageCases: [string, string[], string][] = [
    ["unknown command", ["frobnicate"], 'connmix: unknown command "frobnicate"'],
    ["no command", [], "connmix: no command given"],
    ["unknown flag", ["dev", "-x", "1"], 'connmix: unknown flag "-x"'],
    ["unknown long flag", ["engine", "--verbose"], 'connmix: unknown flag "--verbose"'],
    ["flag without value", ["dev", "-f"], "connmix: flag -f needs a value"],
    ["bad cpu count", ["single", "-p", "two"], 'connmix: -p must be a positive whole number, got "two"'],
    ["zero cpus", ["single", "-p", "0"], 'connmix: -p must be a positive whole number, got "0"'],
    ["stray argument", ["dev", "extra"], 'connmix: unexpected argument "extra"'],
  ];
  for (const [name, args, line] of usageCases) {
    test(`${name}: one line and the usage on stderr, exit 2`, () => {
      const r = runCli(args);
      expect(r.code).toBe(2);
      expect(r.err.split("\n")[0]).toBe(line);
      expect(r.err).toContain("USAGE");
      expect(r.out).toBe("");
    });
  }

  test("a bad config: exactly one line on stderr naming file and key, exit 1, no banner", async () => {
    const { conf } = writeConfig();
    writeFileSync(join(work, conf), readFileSync(join(work, conf), "utf8").replace("entry: lua/entry.lua", "entry: lua/entry.lua, protocol: ws"));
    const r = runCli(["dev", "-f", conf]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${conf}: engine.servers[0].protocol must be "websocket" or "socket", got "ws"\n`);
    expect(r.out).toBe("");
  });

  test("a port in use: an ERROR line naming the port, exit 1", async () => {
    const { conf, logFile } = writeConfig();
    const port = Number(/servers:\n    - \{ port: (\d+)/.exec(readFileSync(join(work, conf), "utf8"))![1]);
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(port, "127.0.0.1", ok));
    try {
      const r = runCli(["engine", "-f", conf]);
      expect(r.code).toBe(1);
      const errors = readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes("\tERROR\t"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(String(port));
    } finally {
      blocker.close();
    }
  });

  test("a missing entry file and a missing config file", async () => {
    const { conf } = writeConfig();
    writeFileSync(join(work, conf), readFileSync(join(work, conf), "utf8").replace("lua/entry.lua", "lua/gone.lua"));
    const r = runCli(["engine", "-f", conf]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${conf}: engine.servers[0].entry file not found: ${join(work, "lua/gone.lua")}\n`);

    const missing = runCli(["dev"]); // default -f conf/connmix.yaml, relative to the working directory
    expect(missing.code).toBe(1);
    expect(missing.err).toBe("conf/connmix.yaml: cannot read config file (ENOENT)\n");
  });
});

describe("version and help", () => {
  test("version prints the version line first", () => {
    const r = runCli(["version"]);
    expect(r.code).toBe(0);
    expect(r.out.split("\n")[0]).toBe(versionLine());
  });

  test("--help prints the usage on stdout", () => {
    const r = runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const cmd of ["center", "engine", "dev", "single", "version"]) expect(r.out).toContain(cmd);
    const sub = runCli(["engine", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.out).toContain("-f, --file");
    expect(sub.out).toContain("-p, --cpus");
  });
});
