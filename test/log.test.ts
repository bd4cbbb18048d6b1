// The logger on real files: line format, caller, level filtering, hot level through a watched
// config file, and daily rotation driven by an injected clock.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HotConfig, loadConfig, watchConfig, type Config } from "../src/config/index.ts";
import { callerOf, log, systemClock } from "../src/log/logger.ts";
import { cleanupAll, tempDir } from "./helpers/files.ts";
import { until } from "./helpers/wait.ts";

const dir = tempDir("log");
const source = readFileSync(import.meta.path, "utf8").split("\n");
const lineOf = (marker: string) => source.findIndex((l) => l.includes(marker)) + 1;
const LINE = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6})\t(DEBUG|INFO|WARN|ERROR)\t([^\t]+)\t(.*)$/;

let n = 0;
function freshLog(extra: Parameters<typeof log.configure>[0] = {}): string {
  const filename = join(dir, `run${n++}`, "connmix.log"); // the directory does not exist yet
  log.configure({ stdout: false, level: "debug", filename, maxFiles: 7, ...extra });
  return filename;
}

async function lines(filename: string): Promise<string[]> {
  await log.flush();
  return readFileSync(filename, "utf8").split("\n").filter(Boolean);
}

afterEach(() => log.configure({ filename: "", clock: systemClock, level: "debug", stdout: true }));
afterAll(cleanupAll);

describe("line format", () => {
  test("timestamp, level, caller dir/file:line and message, tab-separated", async () => {
    const file = freshLog();
    log.info("format check"); // marker: format-line
    const [line] = await lines(file);
    const m = LINE.exec(line!);
    expect(m).not.toBeNull();
    expect(m![2]).toBe("INFO");
    expect(m![3]).toBe(`test/log.test.ts:${lineOf("marker: format-line")}`);
    expect(m![4]).toBe("format check");
  });

  test("local time with microseconds from the clock", async () => {
    const t = new Date(2026, 10, 25, 13, 4, 5, 123).getTime() + 0.456;
    const file = freshLog({ clock: () => t });
    log.warn("clocked");
    expect((await lines(file))[0]!.split("\t").slice(0, 2)).toEqual(["2026-11-25 13:04:05.123456", "WARN"]);
  });

  test("write() takes the caller given (Lua passes file.lua:line) or finds it", async () => {
    const file = freshLog();
    log.write("error", "from lua", "entry.lua:12");
    log.write("debug", "from ts"); // marker: write-line
    const out = (await lines(file)).map((l) => l.split("\t").slice(1));
    expect(out).toEqual([
      ["ERROR", "entry.lua:12", "from lua"],
      ["DEBUG", `test/log.test.ts:${lineOf("marker: write-line")}`, "from ts"],
    ]);
  });

  test("a wrapper names its own caller with callerOf", async () => {
    const file = freshLog();
    function connWarn(msg: string): void {
      if (!log.enabled("warn")) return;
      log.write("warn", `conn 7: ${msg}`, callerOf(connWarn));
    }
    connWarn("slow reader"); // marker: wrapper-line
    expect((await lines(file))[0]!.split("\t").slice(2)).toEqual([
      `test/log.test.ts:${lineOf("marker: wrapper-line")}`,
      "conn 7: slow reader",
    ]);
  });
});

describe("levels", () => {
  test("lines below the level are dropped before any clock or stack work", async () => {
    let clockCalls = 0;
    const file = freshLog({ level: "warn", clock: () => (clockCalls++, Date.now()) });
    clockCalls = 0; // opening the file read the clock once
    log.debug("d");
    log.info("i");
    log.write("info", "w");
    expect(clockCalls).toBe(0);
    log.warn("w");
    log.error("e");
    expect(clockCalls).toBe(2);
    expect((await lines(file)).map((l) => l.split("\t")[1])).toEqual(["WARN", "ERROR"]);
    expect([log.enabled("debug"), log.enabled("info"), log.enabled("warn"), log.enabled("error")]).toEqual([
      false,
      false,
      true,
      true,
    ]);
    log.setLevel("debug");
    expect(log.enabled("debug")).toBe(true);
  });

  test("logging.level is hot: an edit to the watched file applies; a bad edit is logged and ignored", async () => {
    const file = freshLog({ level: "info" });
    const entry = join(dir, "entry.lua");
    writeFileSync(entry, "");
    const conf = join(dir, "hot.yaml");
    const yaml = (level: string, protocol = "websocket") =>
      `logging: { level: ${level} }\nengine:\n  servers:\n    - { port: 6790, entry: ${entry}, protocol: ${protocol} }\n`;
    writeFileSync(conf, yaml("info"));
    const changes: [Config, Config][] = [];
    const hot = new HotConfig();
    hot.follow(["logging.level"], (next, prev) => changes.push([next, prev]));
    const watcher = watchConfig(conf, loadConfig(conf), hot, { pollMs: 50, debounceMs: 20 });
    try {
      log.debug("hidden");
      writeFileSync(conf, yaml("debug"));
      await until(() => changes.length === 1, 2000);
      expect(changes[0]![0].logging.level).toBe("debug");
      expect(changes[0]![1].logging.level).toBe("info");
      log.debug("shown");

      writeFileSync(conf, yaml("error", "ws"));
      await until(() => {
        void log.flush(); // synchronous underneath
        return readFileSync(file, "utf8").includes("\tERROR\t");
      }, 2000);
      expect(changes).toHaveLength(1);
      expect(log.enabled("debug")).toBe(true); // the last good level stays
    } finally {
      watcher.close();
    }
    const out = (await lines(file)).map((l) => l.split("\t"));
    expect(out.map((f) => f[3])).not.toContain("hidden");
    expect(out.map((f) => f[3])).toContain("shown");
    const error = out.find((f) => f[1] === "ERROR")!;
    expect(error[3]).toBe(
      `${conf}: engine.servers[0].protocol must be "websocket" or "socket", got "ws"; keeping the previous configuration`,
    );
  });
});

describe("daily rotation", () => {
  test("a new day renames the file with the old date and keeps maxFiles rotated files", async () => {
    let now = new Date(2026, 10, 1, 12).getTime();
    const file = freshLog({ maxFiles: 2, clock: () => now });
    for (let day = 1; day <= 5; day++) {
      now = new Date(2026, 10, day, 12).getTime();
      log.info(`day ${day}`);
      await log.flush();
    }
    const names = readdirSync(join(file, "..")).sort();
    expect(names).toEqual(["connmix.log", "connmix.log.2026-11-03", "connmix.log.2026-11-04"]);
    expect(readFileSync(`${file}.2026-11-04`, "utf8")).toContain("\tday 4\n");
    expect(readFileSync(file, "utf8")).toEqual(expect.stringContaining("day 5"));
    expect(readFileSync(file, "utf8")).not.toContain("day 4");
  });

  test("lines buffered across midnight go to their own day's file", async () => {
    let now = new Date(2026, 10, 25, 23, 59, 59, 900).getTime();
    const file = freshLog({ clock: () => now });
    log.info("before midnight");
    now += 200;
    log.info("after midnight");
    await log.flush();
    expect(readFileSync(`${file}.2026-11-25`, "utf8")).toMatch(/^2026-11-25 23:59:59\.900000\tINFO\t.*\tbefore midnight\n$/);
    expect(readFileSync(file, "utf8")).toMatch(/^2026-11-26 00:00:00\.100000\tINFO\t.*\tafter midnight\n$/);
  });

  test("a file left by an earlier day is rotated under its own date at start", async () => {
    const runDir = join(dir, "restart");
    mkdirSync(runDir);
    const filename = join(runDir, "connmix.log");
    writeFileSync(filename, "old line\n");
    const old = new Date(2026, 10, 20, 18);
    utimesSync(filename, old, old);
    const now = new Date(2026, 10, 25, 9).getTime();
    log.configure({ stdout: false, filename, maxFiles: 7, clock: () => now });
    log.info("new day");
    await log.flush();
    expect(readFileSync(`${filename}.2026-11-20`, "utf8")).toBe("old line\n");
    expect(readFileSync(filename, "utf8")).toContain("\tnew day\n");
  });

  test("maxFiles 0 keeps every rotated file", async () => {
    let now = new Date(2026, 0, 1, 8).getTime();
    const file = freshLog({ maxFiles: 0, clock: () => now });
    for (let day = 1; day <= 4; day++) {
      now = new Date(2026, 0, day, 8).getTime();
      log.info(`day ${day}`);
    }
    await log.flush();
    expect(readdirSync(join(file, "..")).length).toBe(4);
    expect(existsSync(`${file}.2026-01-01`)).toBe(true);
  });
});
