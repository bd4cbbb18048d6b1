// The whole project type-checks: tsc --noEmit over tsconfig.json (src, native, test, bench, examples,
// build.ts), so a type error fails the suite like any other broken test.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "./helpers/process.ts";

const TSC_TIMEOUT_MS = 120_000;

test("tsc --noEmit -p tsconfig.json finds no errors", async () => {
  const tsc = Bun.spawn([join(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", "tsconfig.json"], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    timeout: TSC_TIMEOUT_MS,
  });
  const [out, err, code] = await Promise.all([new Response(tsc.stdout).text(), new Response(tsc.stderr).text(), tsc.exited]);
  // On failure the diff shows tsc's report (file(line,col): error TSxxxx: ...).
  expect({ code, report: (out + err).trim() }).toEqual({ code: 0, report: "" });
}, TSC_TIMEOUT_MS + 10_000);
