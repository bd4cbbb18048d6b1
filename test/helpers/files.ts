// Temp directories for tests, and the clean-up list run in afterAll: cleanupAll stops the processes and
// servers and removes the directories registered with onCleanup, latest first.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const cleanups: (() => unknown)[] = [];

export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

export async function cleanupAll(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) await f();
}

/** A new temp dir `connmix-<prefix>-XXXXXX`, removed by cleanupAll. */
export function tempDir(prefix = "test"): string {
  const dir = mkdtempSync(join(tmpdir(), `connmix-${prefix}-`));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `files` (path relative to `dir` → content) into `dir`, a new temp dir unless given; returns it. */
export function writeTree(files: Record<string, string>, dir = tempDir()): string {
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  return dir;
}
