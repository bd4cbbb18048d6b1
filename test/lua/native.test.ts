// How the native C is loaded (native/compile.ts): the -O2 build of a checkout's C compiler, or TinyCC when
// CONNMIX_NATIVE=tinycc, when there is no compiler, or when the optimized build fails or cannot be opened.
// Every way must run the same Lua: native-check.ts, in a child process each time (a process loads its C once),
// echoes through a Lua callback, round-trips JSON, hits the memory limit and is stopped by the runaway guard.
// The compiled executable's embedded build is checked in test/binary.test.ts.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync, existsSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findCompiler } from "../../native/compile.ts";
import { cleanupAll, tempDir } from "../helpers/files.ts";
import { ROOT } from "../helpers/process.ts";

afterAll(cleanupAll);

const CHECK = "test/lua/native-check.ts";
const SAME_LUA = ["hello", '{"a":[1,2.5,"x"]}', "after the loop", "not enough memory"];
const GCC = /^gcc \d+\.\d+\.\d+ -O2 \(runtime\.c, json\.c\)$/;
const TINYCC = "TinyCC (bun:ffi), unoptimized (runtime.c, json.c)";

interface Seen {
  build: string;
  notes: { level: string; message: string }[];
  sent: string[];
  loopStopped: boolean;
  log: string;
}

/** Runs native-check.ts of the checkout at `root` with `env` added. */
function check(root: string, env: Record<string, string> = {}): Seen {
  const r = Bun.spawnSync([process.execPath, join(root, CHECK)], {
    cwd: root,
    env: { ...process.env, CONNMIX_NATIVE: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  const out = r.stdout.toString();
  const log = r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`${CHECK} exited with ${r.exitCode}:\n${out}\n${log}`);
  return { ...(JSON.parse(out) as Omit<Seen, "log">), log };
}

function expectSameLua(seen: Seen): void {
  expect(seen.sent).toEqual(SAME_LUA);
  expect(seen.loopStopped).toBe(true);
  expect(seen.log).toContain("callback exceeded its time budget of 200 ms");
}

const compiler = findCompiler();
if (!compiler) console.warn("native.test.ts: SKIPPING the optimized build's tests: no C compiler (cc or gcc) on PATH (bin/setup installs gcc)");
const withCompiler = compiler ? test : test.skip;

describe("from a checkout", () => {
  withCompiler("with a C compiler on PATH, the C is its -O2 build and runs the same Lua", () => {
    const seen = check(ROOT);
    expect(seen.build).toMatch(GCC);
    expect(seen.notes).toEqual([]);
    expectSameLua(seen);
  }, 60_000);

  test("CONNMIX_NATIVE=tinycc: TinyCC, said once, and the same Lua", () => {
    const seen = check(ROOT, { CONNMIX_NATIVE: "tinycc" });
    expect(seen.build).toBe(TINYCC);
    expect(seen.notes).toEqual([{ level: "info", message: "CONNMIX_NATIVE=tinycc: the native C is compiled by TinyCC, unoptimized" }]);
    expectSameLua(seen);
  }, 60_000);

  test("without a C compiler on PATH: TinyCC, with a warning that says how to get the faster build", () => {
    const seen = check(ROOT, { PATH: "/nonexistent" });
    expect(seen.build).toBe(TINYCC);
    expect(seen.notes).toHaveLength(1);
    expect(seen.notes[0]!.level).toBe("warn");
    expect(seen.notes[0]!.message).toContain("no C compiler (cc or gcc) on PATH");
    expect(seen.notes[0]!.message).toContain("install gcc");
    expectSameLua(seen);
  }, 60_000);
});

/** A copy of what native-check.ts runs (src/, native/ without its built objects), whose native/out/ tests may spoil. */
function copyCheckout(): string {
  const copy = tempDir("native");
  for (const p of ["src", "native", CHECK, "package.json", "tsconfig.json"]) {
    cpSync(join(ROOT, p), join(copy, p), { recursive: true, filter: (src) => src !== join(ROOT, "native/out") });
  }
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
  return copy;
}

const objects = (root: string) => (existsSync(join(root, "native/out")) ? readdirSync(join(root, "native/out")).sort() : []);

describe("a spoiled build never breaks start-up", () => {
  withCompiler("an unloadable object in the cache: TinyCC this time, the object removed and built again next time; stale ones pruned", () => {
    const copy = copyCheckout();
    expect(check(copy).build).toMatch(GCC); // builds native/out/runtime-<hash>.so and json-<hash>.so
    const built = objects(copy);
    expect(built).toEqual([expect.stringMatching(/^json-[0-9a-f]{16}\.so$/), expect.stringMatching(/^runtime-[0-9a-f]{16}\.so$/)]);

    for (const f of built) writeFileSync(join(copy, "native/out", f), "not a shared object");
    writeFileSync(join(copy, "native/out/runtime-0123456789abcdef.so"), "an object of older sources");
    const spoiled = check(copy);
    expect(spoiled.build).toBe(TINYCC);
    expect(spoiled.notes.map((n) => n.level)).toEqual(["error", "error"]);
    for (const f of built) {
      expect(spoiled.notes.some((n) => n.message.startsWith(`cannot open ${join(copy, "native/out", f)} (removed), using TinyCC: `))).toBe(true);
    }
    expectSameLua(spoiled);

    const rebuilt = check(copy);
    expect(rebuilt.build).toMatch(GCC);
    expect(rebuilt.notes).toEqual([]);
    expect(objects(copy)).toEqual(built); // the same names again; the stale one is gone
  }, 60_000);

  withCompiler("C the compiler refuses: an error naming the file with the compiler's message, and TinyCC for that library", () => {
    const copy = copyCheckout();
    appendFileSync(join(copy, "native/runtime.c"), "\n#ifndef __TINYC__\n#error only TinyCC builds this copy\n#endif\n");
    const seen = check(copy);
    expect(seen.build).toMatch(/^TinyCC \(bun:ffi\), unoptimized \(runtime\.c\); gcc \d+\.\d+\.\d+ -O2 \(json\.c\)$/);
    expect(seen.notes).toHaveLength(1);
    expect(seen.notes[0]!.level).toBe("error");
    expect(seen.notes[0]!.message).toContain(`cannot build ${join(copy, "native/runtime.c")}, using TinyCC`);
    expect(seen.notes[0]!.message).toContain("only TinyCC builds this copy");
    expectSameLua(seen);
    expect(objects(copy)).toEqual([expect.stringMatching(/^json-[0-9a-f]{16}\.so$/)]); // no runtime object, no temporary file left
  }, 60_000);
});
