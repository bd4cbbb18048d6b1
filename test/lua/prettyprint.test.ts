// lua/utils/prettyprint.lua: after require("utils.prettyprint"), print renders tables. Checked on the
// stdout of a child process, where the log family sends print.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeTree } from "../helpers/files.ts";

const root = resolve(import.meta.dir, "../..");

const ENTRY = String.raw`
require("utils.prettyprint")
print({ path = "/chat", force_query = false, n = 3, query = { foo = "bar" }, list = { 1, "two", mix.null }, empty = {} })
print("plain", 1, nil, true)
local t = { name = "loop" }
t.self = t
print(t, {})
print({ ['say "hi"\n'] = 1, [2.5] = "x", [1] = { { "deep" } } })
`;

const RUN = `
import { LuaVM } from "${root}/src/lua/vm";
import { logging } from "${root}/src/engine/mix/log";
import { json } from "${root}/src/engine/mix/json";
new LuaVM({ entry: process.argv[2], families: [logging, json] }).close();
`;

test("print renders nested tables, one \"key\" = value per line", () => {
  const dir = writeTree({
    "entry.lua": ENTRY,
    "utils/prettyprint.lua": readFileSync(join(root, "lua/utils/prettyprint.lua"), "utf8"),
    "run.ts": RUN,
  });
  const child = Bun.spawnSync([process.execPath, join(dir, "run.ts"), join(dir, "entry.lua")], { stderr: "pipe" });
  expect(child.stderr.toString()).toBe("");
  const out = child.stdout.toString().replace(/table: 0x[0-9a-f]+/g, "table: ADDR");
  expect(out).toBe([
    "{",
    '\t"empty" = [table: ADDR]',
    "\t{}",
    '\t"force_query" = false',
    '\t"list" = [table: ADDR]',
    "\t{",
    "\t\t[1] = 1",
    '\t\t[2] = "two"',
    "\t\t[3] = null",
    "\t}",
    '\t"n" = 3',
    '\t"path" = "/chat"',
    '\t"query" = [table: ADDR]',
    "\t{",
    '\t\t"foo" = "bar"',
    "\t}",
    "}",
    "plain\t1\tnil\ttrue",
    "{",
    '\t"name" = "loop"',
    '\t"self" = [table: ADDR]',
    "}\t{}",
    "{",
    "\t[1] = [table: ADDR]",
    "\t{",
    "\t\t[1] = [table: ADDR]",
    "\t\t{",
    '\t\t\t[1] = "deep"',
    "\t\t}",
    "\t}",
    '\t[2.5] = "x"',
    '\t"say \\"hi\\"\\n" = 1',
    "}",
    "",
  ].join("\n"));
});
