// The compiled executable for tests: dist/ of this checkout, (re)built with `bun build.ts` when it is missing or
// any source is newer (binary.test.ts and test/handover share it), and builds of a copy of the checkout with
// another version string (an upgrade to a new executable).
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { alive } from "../../src/handover/pidfile.ts";
import { tempDir } from "./files.ts";
import { ROOT, runSync } from "./process.ts";

export const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
export const BINARY = join(ROOT, "dist/connmix-linux-x64");
export const TARBALL = join(ROOT, `dist/connmix-${VERSION}-linux-x64.tar.gz`);
export const BUILD_TIMEOUT_MS = 240_000;

/** What the executable is built from. */
const SOURCES = ["src", "native", "conf", "lua", "build.ts", "package.json", "package-lock.json"];

function newestSource(): number {
  let newest = 0;
  const walk = (p: string) => {
    if (!existsSync(p)) return;
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const n of readdirSync(p)) if (!n.startsWith(".")) walk(join(p, n));
    } else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of SOURCES) walk(join(ROOT, p));
  return newest;
}

/**
 * Runs `fn` while holding dist/.build-lock: test files that run at once (bin/test runs several) must not build
 * dist/ together (tar read a staging file the other build was rewriting). A lock whose holder is gone is taken over.
 */
function withBuildLock<T>(fn: () => T): T {
  const lock = join(ROOT, "dist/.build-lock");
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  const end = Date.now() + BUILD_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      const holder = Number(existsSync(join(lock, "pid")) ? readFileSync(join(lock, "pid"), "utf8") : 0);
      if (holder > 0 && !alive(holder)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > end) throw new Error(`dist/.build-lock still held by pid ${holder} after ${BUILD_TIMEOUT_MS} ms`);
      else Bun.sleepSync(200);
    }
  }
  writeFileSync(join(lock, "pid"), String(process.pid));
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Builds dist/ (the executable, and the tarball unless `binaryOnly`) when stale; says what it did. */
export function buildIfStale(binaryOnly = false): string {
  return withBuildLock(() => build(binaryOnly));
}

function build(binaryOnly: boolean): string {
  const outputs = binaryOnly ? [BINARY] : [BINARY, TARBALL];
  const oldest = Math.min(...outputs.map((p) => (existsSync(p) ? statSync(p).mtimeMs : 0)));
  if (oldest > newestSource()) return "up to date";
  const r = runSync([process.execPath, join(ROOT, "build.ts"), ...(binaryOnly ? ["--binary-only"] : [])], ROOT, BUILD_TIMEOUT_MS);
  if (r.code !== 0) throw new Error(`bun build.ts failed (exit ${r.code}):\n${r.out}\n${r.err}`);
  return r.out.trim();
}

/** Builds the executable from a copy of this checkout whose package.json says `version`; returns its path. */
export function buildVersion(version: string): string {
  const copy = tempDir("build");
  for (const p of SOURCES) if (existsSync(join(ROOT, p))) cpSync(join(ROOT, p), join(copy, p), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
  const pkg = JSON.parse(readFileSync(join(copy, "package.json"), "utf8")) as { version: string };
  writeFileSync(join(copy, "package.json"), JSON.stringify({ ...pkg, version }, null, 2));
  const r = runSync([process.execPath, join(copy, "build.ts"), "--binary-only"], copy, BUILD_TIMEOUT_MS);
  if (r.code !== 0) throw new Error(`bun build.ts of version ${version} failed (exit ${r.code}):\n${r.out}\n${r.err}`);
  return join(copy, "dist/connmix-linux-x64");
}
