// Reports of `connmix test`: a readable one for people (failures with file:line and the log lines the case
// wrote) and JUnit XML for CI.
import type { FileResult } from "./run";

const LOG_LINES = 20;

export function textReport(files: FileResult[]): string {
  const out: string[] = [];
  let passed = 0;
  let failed = 0;
  for (const f of files) {
    out.push(`${f.entry}  (${f.path})`);
    for (const c of f.cases) {
      const ms = `${c.ms.toFixed(1)} ms`;
      if (!c.failure) {
        passed++;
        out.push(`  ok    ${c.name}  ${ms}`);
        continue;
      }
      failed++;
      out.push(`  FAIL  ${c.name}  ${ms}`);
      out.push(`        ${f.path}:${c.failure.line}: ${c.failure.message.replaceAll("\n", "\n        ")}`);
      const log = c.log.slice(-LOG_LINES);
      if (log.length > 0) {
        out.push(`        log (${c.log.length > LOG_LINES ? `last ${LOG_LINES} of ${c.log.length}` : c.log.length} lines):`);
        for (const l of log) out.push(`          ${l}`);
      }
    }
  }
  out.push(`${passed} passed, ${failed} failed`);
  return out.join("\n") + "\n";
}

const xml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!)
    // XML 1.0 cannot carry most control characters, not even escaped.
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

export function junitReport(files: FileResult[]): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = files.reduce((n, f) => n + f.cases.length, 0);
  const failures = files.reduce((n, f) => n + f.cases.filter((c) => c.failure).length, 0);
  out.push(`<testsuites name="connmix test" tests="${total}" failures="${failures}">`);
  for (const f of files) {
    const seconds = f.cases.reduce((s, c) => s + c.ms, 0) / 1000;
    out.push(`  <testsuite name="${xml(f.path)}" tests="${f.cases.length}" failures="${f.cases.filter((c) => c.failure).length}" errors="0" time="${seconds.toFixed(3)}">`);
    for (const c of f.cases) {
      const open = `    <testcase name="${xml(c.name)}" classname="${xml(f.entry)}" file="${xml(f.path)}" line="${c.line}" time="${(c.ms / 1000).toFixed(3)}"`;
      if (!c.failure) {
        out.push(`${open}/>`);
        continue;
      }
      const where = `${f.path}:${c.failure.line}`;
      out.push(`${open}>`);
      out.push(`      <failure message="${xml(`${where}: ${c.failure.message.split("\n")[0]}`)}">${xml(`${where}: ${c.failure.message}`)}</failure>`);
      if (c.log.length > 0) out.push(`      <system-out>${xml(c.log.join("\n"))}</system-out>`);
      out.push("    </testcase>");
    }
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}
