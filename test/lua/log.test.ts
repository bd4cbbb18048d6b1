// mix.log from Lua: the four levels reach the engine log with the Lua caller, below-level calls are
// dropped, and a bad level is an error returned to the script.
import { afterAll, expect, test } from "bun:test";
import { basename, dirname } from "node:path";
import { log } from "../../src/log/logger";
import { captureLog } from "../helpers/log";
import { makeVM, owner, recorded, TEST_EVENT } from "../helpers/lua";

const readLog = captureLog();
afterAll(() => log.setLevel("debug"));

const ENTRY = `function on_event(id, p)
  local written = mix.log(mix.DEBUG, "debug " .. p)
  mix.log(mix.INFO, "info " .. p)
  mix.log(mix.WARN, "warn " .. p)
  mix.log(mix.ERROR, "error " .. p)
  local ok, err = mix.log("loud", "x")
  record(tostring(written) .. " " .. tostring(ok) .. " " .. err)
end
`;

test("each level is written with the Lua file and line as the caller", () => {
  const vm = makeVM(ENTRY);
  vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "one");
  const lines = readLog().split("\n").filter((l) => l.endsWith(" one"));
  expect(lines).toHaveLength(4);
  const fields = lines.map((l) => l.split("\t"));
  expect(fields.map((f) => f[1])).toEqual(["DEBUG", "INFO", "WARN", "ERROR"]);
  // Like the engine's own lines: the file's directory and name, then the line.
  const file = `${basename(dirname(vm.entry))}/entry.lua`;
  expect(fields.map((f) => f[2])).toEqual([2, 3, 4, 5].map((n) => `${file}:${n}`));
  expect(fields.map((f) => f[3])).toEqual(["debug one", "info one", "warn one", "error one"]);
  for (const line of lines) expect(line).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\t/);
  // b = mix.log(...) as the docs write it: true once written, false (and why) otherwise.
  expect(recorded.at(-1)).toBe("true false invalid log level: loud");
});

test("levels below the configured one are not written", () => {
  const vm = makeVM(ENTRY);
  log.setLevel("warn");
  vm.scheduler.dispatch(owner(), TEST_EVENT, 1, "two");
  const levels = readLog().split("\n").filter((l) => l.endsWith(" two")).map((l) => l.split("\t")[1]);
  expect(levels).toEqual(["WARN", "ERROR"]);
  expect(recorded.at(-1)).toBe("false false invalid log level: loud"); // the DEBUG line was not written
});
