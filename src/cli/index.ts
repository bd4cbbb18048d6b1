// `connmix center|engine|dev|single [-f FILE] [-p CPUS]`, `connmix reload|drain [MODE] [-f FILE]`, `connmix version`,
// `connmix test ENTRY CASES...`, `--help`.
// Usage errors exit 2, configuration errors exit 1; both print one line on stderr, no stack.
import { defineCommand, parseArgs, renderUsage, runCommand, type ArgDef, type ArgsDef, type CommandDef } from "citty";
import { availableParallelism } from "node:os";
import { ConfigError, loadConfig } from "../config/load.ts";
import { watchConfig } from "../config/watch.ts";
import { HotConfig } from "../config/hot.ts";
import { handleSignals, onRequest, onShutdown, shutdown } from "../lifecycle.ts";
import { Handover } from "../handover/successor.ts";
import { tellPredecessor } from "../handover/predecessor.ts";
import { signalNodes } from "./signal.ts";
import { log } from "../log/logger.ts";
import { keepRecent } from "../log/recent.ts";
import { runMode } from "../app/modes.ts";
import { MODES, type Mode } from "../config/schema.ts";
import { printBanner } from "./banner.ts";
import { versionLine } from "../version.ts";
import { nativeBuild } from "../../native/compile.ts";

const nodeArgs = {
  file: { type: "string", alias: "f", valueHint: "FILE", description: "config file", default: "conf/connmix.yaml" },
  cpus: { type: "string", alias: "p", valueHint: "CPUS", description: "CPUs to use (default: all of this machine)" },
} as const;

const descriptions: Record<Mode, string> = {
  center: "run the center: node registry and center API",
  engine: "run an engine: mesh point, API server and the Lua servers",
  dev: "run center and engine in one process, for development",
  single: "run center and engine in one process, for a small production",
};

const nodeCommand = (mode: Mode) =>
  defineCommand({
    meta: { name: mode, description: descriptions[mode] },
    args: nodeArgs,
    run: ({ args }) => startNode(mode, args.file, args.cpus),
  });

const versionCommand = defineCommand({
  meta: { name: "version", description: "print the version line and check the embedded Lua" },
  run: async () => {
    // Second line: a result computed by Lua 5.1 + LuaBitOp, after the runaway guard stopped a runaway
    // loop (src/cli/selfcheck.ts; loaded lazily so the node commands do not pay for it). Third: which
    // compiler built the native C (native/compile.ts).
    const { luaSelfCheck } = await import("./selfcheck.ts");
    let check: string;
    try {
      check = luaSelfCheck();
    } catch (err) {
      fatal(`connmix: ${err instanceof Error ? err.message : String(err)}`);
    }
    process.stdout.write(`${versionLine()}\n${check}\nnative C: ${nativeBuild()}\n`);
  },
});

const testCommand = defineCommand({
  meta: { name: "test", description: "run an entry script offline against case files (scripted conversations)" },
  args: {
    entry: { type: "positional", description: "the entry script (.lua)", valueHint: "ENTRY" },
    cases: { type: "positional", description: "one or more case files (.yaml)", valueHint: "CASES" },
    junit: { type: "string", valueHint: "FILE", description: "also write a JUnit XML report to FILE" },
  },
  run: async ({ args }) => {
    const { runTests } = await import("./test-command.ts");
    const [entry, ...cases] = args._ as string[];
    process.exitCode = await runTests(entry!, cases, args.junit);
  },
});

/** Longest a successor may take to serve after a reload before it is given up. */
const SUCCESSOR_START_MS = 60_000;

const signalCommand = (what: "reload" | "drain", description: string) =>
  defineCommand({
    meta: { name: what, description },
    args: {
      mode: { type: "positional", required: false, valueHint: MODES.join("|"), description: "which node of this config (default: every one running)" },
      file: nodeArgs.file,
    },
    run: async ({ args }) => {
      let config;
      try {
        // The successor will load the file: one that does not load is reported here, and nobody is signalled.
        config = loadConfig(args.file, { mode: "center" }); // (no entry checks: only logging.filename is used here)
      } catch (e) {
        if (e instanceof ConfigError) fatal(`connmix: nothing ${what === "reload" ? "reloaded" : "drained"}: ${e.message}`);
        throw e;
      }
      process.exit(await signalNodes(config, (args.mode as Mode | undefined) ?? null, what));
    },
  });

const subCommands: Record<string, CommandDef<any>> = {
  ...Object.fromEntries(MODES.map((m) => [m, nodeCommand(m)])),
  reload: signalCommand("reload", "hand a running node over to a new process without dropping connections"),
  drain: signalCommand("drain", "stop a running node taking clients; it exits once they left (engine.drainTimeout)"),
  version: versionCommand,
  test: testCommand,
};

const main = defineCommand({
  meta: { name: "connmix", description: "distributed WebSocket gateway" },
  subCommands,
});

async function usage(cmd: CommandDef<any>, parent?: CommandDef<any>, tty = process.stdout.isTTY): Promise<string> {
  const text = await renderUsage(cmd, parent);
  return tty ? text : text.replace(/\x1b\[[0-9;]*m/g, "");
}

async function usageError(message: string, cmd: CommandDef<any>, parent?: CommandDef<any>): Promise<never> {
  process.stderr.write(`connmix: ${message}\n\n${await usage(cmd, parent, process.stderr.isTTY)}\n`);
  process.exit(2);
}

function fatal(message: string): never {
  tellPredecessor({ t: "failed", message });
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

// Strict check of what citty parses: it lets unknown flags, empty values and stray arguments through.
async function checkArgs(name: string, rest: string[]): Promise<void> {
  const cmd = subCommands[name]!;
  const flags = Object.entries((cmd.args ?? {}) as ArgsDef).filter(([, d]) => d.type !== "positional");
  const aliasOf = (d: ArgDef) => ("alias" in d && typeof d.alias === "string" ? d.alias : undefined);
  const fail = (message: string) => usageError(message, cmd, main);
  // Positionals are checked below, so citty is given the flags only (it throws on a missing positional).
  const args = parseArgs(rest, Object.fromEntries(flags) as ArgsDef) as Record<string, unknown> & { _: string[] };
  if (name === "test" && args._.length < 2) await fail("test needs an entry script and at least one case file");
  // citty reads --no-NAME as NAME = false; no flag here takes that form.
  const options = rest.slice(0, rest.includes("--") ? rest.indexOf("--") : rest.length);
  const negated = options.find((a) => a.startsWith("--no-"));
  if (negated) await fail(`unknown flag "${negated.split("=")[0]}"`);
  const known = new Set(["_", ...flags.flatMap(([n, d]) => [n, aliasOf(d) ?? n])]);
  for (const key of Object.keys(args)) if (!known.has(key)) await fail(`unknown flag "${key.length === 1 ? "-" : "--"}${key}"`);
  // How the flag was written (-p or --cpus), as the messages name it.
  const written = (flag: string, alias: string | undefined) =>
    alias !== undefined && !options.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`)) ? `-${alias}` : `--${flag}`;
  for (const [flag, def] of flags) {
    const value = args[flag];
    if (value === undefined) continue;
    if (value === "") await fail(`flag ${written(flag, aliasOf(def))} needs a value`);
    if (flag === "cpus" && !/^[1-9]\d*$/.test(String(value))) {
      await fail(`${written(flag, aliasOf(def))} must be a positive whole number, got "${value}"`);
    }
  }
  const positionals = name === "test" ? [] : args._;
  if (name === "reload" || name === "drain") {
    const mode = positionals.shift();
    if (mode !== undefined && !(MODES as readonly string[]).includes(mode)) await fail(`unknown mode "${mode}" (${MODES.join(", ")})`);
  }
  if (positionals.length) await fail(`unexpected argument "${positionals[0]}"`);
}

export async function runCli(argv: string[]): Promise<void> {
  const name = argv[0] === "--version" ? "version" : argv[0];
  if (argv.includes("--help") || argv.includes("-h")) {
    const sub = name ? subCommands[name] : undefined;
    process.stdout.write(`${await usage(sub ?? main, sub ? main : undefined)}\n`);
    return;
  }
  if (!name) await usageError("no command given", main);
  if (!subCommands[name!]) await usageError(`unknown command "${name}"`, main);
  await checkArgs(name!, argv.slice(1));
  await runCommand(main, { rawArgs: [name!, ...argv.slice(1)] });
}

// spec §2: more CPUs than the machine has are clamped; fewer are allowed with a warning.
function chooseCpus(requested: number | undefined, device: number): number {
  if (requested === undefined) return device;
  if (requested > device) {
    log.warn(`max_procs: ${requested} exceeds device_cpus: ${device}, using ${device}`);
    return device;
  }
  if (requested < device) log.warn(`cpu underutilized, max_procs: ${requested}, device_cpus: ${device}`);
  return requested;
}

async function startNode(mode: Mode, configPath: string, cpusArg: string | undefined): Promise<void> {
  handleSignals(); // before anything is printed: a signal from then on is an orderly stop
  const requested = cpusArg === undefined ? undefined : Number(cpusArg);
  let config;
  try {
    config = loadConfig(configPath, { mode });
  } catch (e) {
    if (e instanceof ConfigError) fatal(e.message);
    throw e;
  }
  try {
    log.configure({ filename: config.logging.filename, maxFiles: config.logging.maxFiles, level: config.logging.level, tap: keepRecent });
  } catch (e) {
    fatal(`${configPath}: logging.filename ${(e as Error).message}`);
  }
  printBanner();
  const cpus = chooseCpus(requested, availableParallelism());
  // The process's hot config: the watcher feeds it, the parts that apply hot keys follow it.
  const hot = new HotConfig();
  const watcher = watchConfig(configPath, config, hot, { mode });
  onShutdown("config watcher", () => watcher.close());
  try {
    const parts = await runMode(mode, config, { cpus, configPath, hot });
    const handover = new Handover(parts, SUCCESSOR_START_MS);
    onRequest((what, why) => (what === "reload" ? handover.request(why) : handover.drain(why)));
  } catch (e) {
    // Services report start failures (port in use, ...) as one-line errors.
    log.error((e as Error).message);
    tellPredecessor({ t: "failed", message: (e as Error).message });
    await shutdown("start failed", 1);
  }
}
