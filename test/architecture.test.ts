// The layers' directions (docs/internals.md), read from the import statements of the real files: the Lua
// runtime knows nothing of the engine or the cluster, the link layer nothing of what runs over it, the
// engine nothing of the cluster, and only the application (src/app, the CLI, handovers) wires them.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

/** Repository paths (or package names) a file imports: static, re-exports, side-effect and dynamic imports. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm),
    ...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => (s.startsWith(".") ? relative(ROOT, resolve(ROOT, dirname(file), s)) : s));
}

const tsFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => join(dir, f));

/** The imports of `files` that fall under one of `forbidden` (folders or files). */
function violations(files: string[], forbidden: string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    for (const target of importsOf(file)) {
      if (forbidden.some((f) => target === f || target.startsWith(f + "/") || target === f + ".ts")) out.push(`${file} imports ${target}`);
    }
  }
  return out;
}

const ENGINE_AND_CLUSTER = ["src/engine", "src/mesh", "src/center", "src/api", "src/access", "src/workers", "src/net", "src/queue", "src/redis", "src/handover", "src/app", "src/cli"];
const ENGINE = ["src/engine", "src/api", "src/queue", "src/redis", "src/access", "src/metrics", "src/luatest"];
const CLUSTER = ["src/mesh", "src/center", "src/workers"];
const APPLICATION = ["src/app", "src/cli", "src/main.ts"];
/** What the Lua runtime (src/lua) may import of the repository: itself, native/ and the logger. */
const RUNTIME_MAY_IMPORT = ["src/lua", "native", "src/log"];

/** The imports of `files` that are files of the repository outside `allowed` (packages are not counted). */
function outside(files: string[], allowed: string[]): string[] {
  const repo = (t: string) => t.startsWith("src/") || t.startsWith("native/") || t.startsWith("test/");
  const inside = (t: string) => allowed.some((a) => t === a || t.startsWith(a + "/"));
  return files.flatMap((file) => importsOf(file).filter((t) => repo(t) && !inside(t)).map((t) => `${file} imports ${t}`));
}

describe("import directions", () => {
  test("the reader sees imports spread over lines, re-exports and dynamic imports", () => {
    expect(importsOf("src/lua/vm.ts")).toContain("native/runtime");
    expect(importsOf("src/lua/stack.ts")).toContain("native/lua"); // a multi-line import
    expect(importsOf("src/cli/index.ts")).toContain("src/cli/selfcheck.ts"); // import("./selfcheck.ts")
    // A direction that does not hold today is seen as one.
    expect(violations(["src/engine/mix/connection.ts"], ["src/lua"])).not.toEqual([]);
    expect(outside(["src/engine/mix/connection.ts"], RUNTIME_MAY_IMPORT)).not.toEqual([]);
    expect(violations(["src/app/engine.ts"], ["src/mesh"])).not.toEqual([]);
  });

  test("native/ imports nothing from src/", () => {
    const files = tsFiles("native");
    expect(files.length).toBeGreaterThan(3);
    expect(violations(files, ["src"])).toEqual([]);
  });

  test("the Lua runtime (src/lua: vm, scheduler, stack, family) imports only itself, native/ and the logger: nothing of the engine, its mix.* families or above", () => {
    const files = tsFiles("src/lua");
    expect(files.length).toBeGreaterThan(4);
    expect(outside(files, RUNTIME_MAY_IMPORT)).toEqual([]);
    expect(violations(files, ENGINE_AND_CLUSTER)).toEqual([]);
  });

  test("the mix.* families are the engine's and build on the runtime (src/engine/mix imports src/lua, never the reverse)", () => {
    const families = tsFiles("src/engine/mix");
    expect(families.length).toBeGreaterThan(10);
    expect(violations(families, ["src/lua"]).length).toBeGreaterThan(10);
    expect(violations(tsFiles("src/lua"), ["src/engine/mix"])).toEqual([]);
  });

  test("src/net imports nothing of the mesh, the center, the workers, the engine, the API or the Lua runtime", () => {
    const files = tsFiles("src/net");
    expect(files.length).toBeGreaterThan(5);
    expect(violations(files, ["src/mesh", "src/center", "src/workers", "src/engine", "src/api", "src/access", "src/lua", "native", "src/app", "src/cli"])).toEqual([]);
  });

  test("the engine (node, servers, families, API, queues) imports nothing of the cluster or the application", () => {
    const files = ENGINE.flatMap(tsFiles);
    expect(files.length).toBeGreaterThan(30);
    expect(violations(files, [...CLUSTER, ...APPLICATION])).toEqual([]);
  });

  test("the cluster (mesh, center, workers) imports nothing of the application", () => {
    const files = CLUSTER.flatMap(tsFiles);
    expect(files.length).toBeGreaterThan(15);
    expect(violations(files, APPLICATION)).toEqual([]);
  });

  test("the center (registry, its HTTP API, console) imports nothing of the engine, the mesh or the workers; of the engine API only its wire contract", () => {
    const engineApi = tsFiles("src/api").filter((f) => f !== "src/api/protocol.ts").map((f) => f.slice(0, -3));
    expect(violations(tsFiles("src/center"), ["src/engine", "src/mesh", "src/workers", "src/lua", "native", ...engineApi])).toEqual([]);
  });

  test("only the application imports the composition roots in src/app", () => {
    const below = tsFiles("src").filter((f) => !APPLICATION.some((a) => f === a || f.startsWith(a + "/")) && !f.startsWith("src/handover/"));
    expect(violations(below, ["src/app"])).toEqual([]);
  });
});

describe("native/lua.ts binds only what is used", () => {
  const source = readFileSync(join(ROOT, "native/lua.ts"), "utf8");
  const users = [...tsFiles("src"), ...tsFiles("native")].filter((f) => f !== "native/lua.ts").map((f) => readFileSync(join(ROOT, f), "utf8")).join("\n");
  const used = (pattern: string) => new RegExp(pattern).test(users);

  test("every bound C function is called as lua.NAME", () => {
    const bound = [...source.matchAll(/^ {2}(lua[L_]?\w+): \{ args:/gm)].map((m) => m[1]!);
    expect(bound.length).toBeGreaterThan(20);
    expect(bound.filter((name) => !used(`\\blua\\.${name}\\b`))).toEqual([]);
  });

  test("every exported constant is read", () => {
    const constants = [...source.matchAll(/^export const (\w+)/gm)].map((m) => m[1]!).filter((n) => n !== "lua");
    expect(constants.length).toBeGreaterThan(10);
    expect(constants.filter((name) => !used(`\\b${name}\\b`))).toEqual([]);
  });
});
