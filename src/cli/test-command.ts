// `connmix test ENTRY CASES... [--junit FILE]`: runs an entry script offline against the case files'
// scripted conversations (src/luatest), prints a report, writes JUnit XML if asked. Exit status 0 when
// every case passed, 1 when one failed or a file could not be read.
import { existsSync, writeFileSync } from "node:fs";
import { log } from "../log/logger.ts";
import { CaseFileError, loadCaseFile } from "../luatest/cases.ts";
import { runCaseFile, type FileResult, type LogSink } from "../luatest/run.ts";
import { junitReport, textReport } from "../luatest/report.ts";

export async function runTests(entry: string, casePaths: string[], junit: string | undefined): Promise<number> {
  if (!existsSync(entry)) {
    process.stderr.write(`connmix test: entry script ${entry} not found\n`);
    return 1;
  }
  // Log lines (Lua errors, mix.log) belong to the case that wrote them, shown when it fails.
  const sink: LogSink = { lines: [] };
  log.configure({ stdout: false, filename: "", level: "debug", tap: (lines) => sink.lines.push(lines) });
  const results: FileResult[] = [];
  try {
    for (const path of casePaths) results.push(await runCaseFile(entry, loadCaseFile(path), sink));
  } catch (e) {
    if (!(e instanceof CaseFileError)) throw e;
    process.stderr.write(`connmix test: ${e.message}\n`);
    return 1;
  } finally {
    await log.flush(); // the buffered lines were the cases'; none of them goes to stdout
    log.configure({ tap: null, stdout: true });
  }
  process.stdout.write(textReport(results));
  if (junit) writeFileSync(junit, junitReport(results));
  return results.some((f) => f.cases.some((c) => c.failure)) ? 1 : 0;
}
