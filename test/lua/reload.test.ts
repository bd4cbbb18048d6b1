// Hot reload (byteCodeExpires): edits to the entry or a required module reach new callbacks; a file that
// fails to compile is logged with file:line and the old code keeps running; 0 disables reloading.
import { beforeEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { captureLog } from "../helpers/log.ts";
import { makeVM, owner, recorded, TEST_EVENT } from "../helpers/lua";
import { until } from "../helpers/wait.ts";

const readLog = captureLog();
beforeEach(() => { recorded.length = 0; });

const ENTRY = `local greet = require("lib.greet")\nfunction on_event(id, p) record(greet.word() .. " " .. p) end\n`;
const MODULE = (word: string) => `return { word = function() return "${word}" end }\n`;

function answer(vm: ReturnType<typeof makeVM>): string {
  recorded.length = 0;
  vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "x");
  return recorded[0];
}

test("an edited module and an edited entry take effect for new callbacks", async () => {
  const vm = makeVM(ENTRY, { reloadSeconds: 0.1 }, { "lib/greet.lua": MODULE("hello") });
  const dir = dirname(vm.entry);
  expect(answer(vm)).toBe("hello x");
  writeFileSync(join(dir, "lib/greet.lua"), MODULE("bonjour"));
  await until(() => answer(vm) === "bonjour x");
  writeFileSync(vm.entry, ENTRY.replace('" " .. p', '" (v2) " .. p'));
  await until(() => answer(vm) === "bonjour (v2) x");
  expect(readLog()).toContain(`lua code reloaded ${vm.entry}`);
  vm.close();
});

test("a syntax error is logged with file and line and the old code keeps running", async () => {
  const vm = makeVM(ENTRY, { reloadSeconds: 0.1 }, { "lib/greet.lua": MODULE("hello") });
  const module = join(dirname(vm.entry), "lib/greet.lua");
  writeFileSync(module, "return {\n  word = function() return 'oops' end,,\n}\n");
  await until(() => readLog().includes("lua reload skipped"));
  expect(readLog()).toMatch(new RegExp(`\\tERROR\\t.*lua reload skipped, ${module.replace(/[/.]/g, "\\$&")}:2: unexpected symbol`));
  expect(answer(vm)).toBe("hello x");
  writeFileSync(module, MODULE("fixed"));
  await until(() => answer(vm) === "fixed x");
  vm.close();
});

test("byteCodeExpires 0 disables reloading", async () => {
  const vm = makeVM(ENTRY, { reloadSeconds: 0 }, { "lib/greet.lua": MODULE("hello") });
  writeFileSync(join(dirname(vm.entry), "lib/greet.lua"), MODULE("changed"));
  await Bun.sleep(300);
  expect(answer(vm)).toBe("hello x");
  vm.close();
});

test("a callback blocked during a reload finishes on the code it started with", async () => {
  const vm = makeVM(`function on_event(id, p) local v = sleep_ms(200, "slept") record("v1 " .. v) end\n`, { reloadSeconds: 0.05 });
  vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "x");
  writeFileSync(vm.entry, `function on_event(id, p) record("v2 " .. p) end\n`);
  await until(() => answer(vm) === "v2 x");
  recorded.length = 0;
  await until(() => recorded.includes("v1 slept"));
  vm.close();
});
