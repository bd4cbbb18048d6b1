// How the native C libraries (runtime.c; json.c with json-encode.c and json-decode.c) get loaded: built by a C
// compiler with -O2 when possible, by bun:ffi's built-in TinyCC (`cc`) otherwise. TinyCC compiles at every
// start and does not optimize; limited_alloc (every Lua allocation), dispatch_event, reply_send and the JSON
// codec run on the hot path (the numbers: docs/runtime.md "Libraries").
//
// The optimized build is a shared object (CC_FLAGS) opened with bun:ffi's `dlopen`. The sources include no
// header (they declare what they use), and -nostdlib links nothing: their Lua and libc symbols resolve when
// the object is opened, against liblua5.1 (opened globally by libs.ts first) and the libc Bun runs on. So a
// compiler without libc development files (Debian's gcc with --no-install-recommends) is enough.
//
// - From a checkout: native/out/<name>-<hash>.so, the hash over the sources, the flags and the compiler's
//   identity. The first start that misses it compiles it (under a temporary name, renamed into place: workers
//   and test processes start at once); every other start only checks that it exists.
// - The compiled executable: build.ts compiles the objects and embeds them; one is copied out to the private
//   temporary directory before it is opened (dlopen cannot read Bun's virtual file system).
// - CONNMIX_NATIVE=tinycc, no compiler on PATH, or any failure of the optimized build: TinyCC, as before.
//
// native/ cannot log (it imports nothing from src/): what was chosen and what went wrong is kept for the
// application to log once (nativeBuild, nativeNotes).
import { cc, dlopen, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import runtimeSource from "./runtime.c" with { type: "file" };
import jsonSource from "./json.c" with { type: "file" };
import encodeSource from "./json-encode.c" with { type: "file" };
import decodeSource from "./json-decode.c" with { type: "file" };
import allocatorSource from "./allocator.c" with { type: "file" };
import { loadLuaLibraries, materialize } from "./libs";

/** Each library's C files (name → path), its main file first: json.c #includes the other two. */
export const C_LIBRARIES = {
  runtime: { "runtime.c": runtimeSource },
  json: { "json.c": jsonSource, "json-encode.c": encodeSource, "json-decode.c": decodeSource },
};
export type CLibrary = keyof typeof C_LIBRARIES;

/** C that only TinyCC compiles: it is what TinyCC links C against (Bun's own allocator), see bunAllocator. */
export const TINYCC_SOURCES = { "allocator.c": allocatorSource };

/** The optimized build: any x86-64 (no -march=native), no libc start files or libraries (none needed). */
export const CC_FLAGS = ["-O2", "-fPIC", "-shared", "-nostdlib"];
/** Longest a compile may take (it takes under a second): a compiler that hangs must not hang the start. */
const COMPILE_TIMEOUT_MS = 60_000;
/** The compilers looked for on PATH, in order. */
const COMPILERS = ["cc", "gcc"];
const TINYCC = "TinyCC (bun:ffi), unoptimized";
/** The environment variable that forces TinyCC ("tinycc"). */
const ENV = "CONNMIX_NATIVE";

export interface NativeNote {
  level: "info" | "warn" | "error";
  message: string;
}
const notes: NativeNote[] = [];
const builtBy = new Map<CLibrary, string>();

function note(level: NativeNote["level"], message: string): void {
  if (!notes.some((n) => n.message === message)) notes.push({ level, message });
}

/** The C compiler on PATH, or null. */
export function findCompiler(): string | null {
  for (const name of COMPILERS) {
    const path = Bun.which(name);
    if (path) return path;
  }
  return null;
}

const mainSource = (name: CLibrary) => Object.values(C_LIBRARIES[name])[0]!;
/** How a checkout's objects are named, with the 16 hex digits of their hash. */
const objectName = (name: CLibrary, hash: string) => `${name}-${hash}.so`;
/** Matches objectName's names; `embedded`: as Bun names an embedded file (its own hash before the extension). */
const objectPattern = (name: CLibrary, embedded = false) => new RegExp(`^${name}-[0-9a-f]{16}${embedded ? "-\\w+" : ""}\\.so$`);

/**
 * Where a checkout keeps `name` built by `compiler` from its current sources. The compiler's real path, size
 * and modification time stand for its version: finding the object must not start a process.
 */
export function objectPath(name: CLibrary, compiler: string): string {
  const real = realpathSync(compiler);
  const { size, mtimeMs } = statSync(real);
  const hash = createHash("sha256").update(`${CC_FLAGS.join(" ")}\0${real}\0${size}\0${mtimeMs}\0`);
  for (const [file, path] of Object.entries(C_LIBRARIES[name])) hash.update(`${file}\0`).update(readFileSync(path));
  return join(dirname(mainSource(name)), "out", objectName(name, hash.digest("hex").slice(0, 16)));
}

/** Builds `name` with `compiler` unless its object exists; returns the object's path. Throws the compiler's message. */
export function buildObject(name: CLibrary, compiler: string): string {
  const out = objectPath(name, compiler);
  if (existsSync(out)) return out;
  const main = mainSource(name);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    const r = Bun.spawnSync([compiler, ...CC_FLAGS, "-o", tmp, main], { stdout: "pipe", stderr: "pipe", timeout: COMPILE_TIMEOUT_MS });
    if (r.exitCode !== 0) {
      const said = (r.stderr.toString() || r.stdout.toString()).trim() || (r.signalCode ? `stopped by ${r.signalCode}` : `exit code ${r.exitCode}`);
      throw new Error(`${compiler} ${CC_FLAGS.join(" ")} failed on ${main}: ${said}`);
    }
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  // Objects of earlier sources are never used again (a running process keeps its own mapped).
  const dir = dirname(out);
  for (const f of readdirSync(dir)) if (objectPattern(name).test(f) && join(dir, f) !== out) rmSync(join(dir, f), { force: true });
  return out;
}

/** "gcc 12.2.0 -O2", from the compiler's own note in the object (its .comment section). */
function compiledBy(object: string): string {
  const text = readFileSync(object, "latin1");
  const gcc = /GCC: \([^)]*\) ([\w.]+)/.exec(text);
  const clang = /clang version ([\w.]+)/.exec(text);
  return `${gcc ? `gcc ${gcc[1]}` : clang ? `clang ${clang[1]}` : "cc"} ${CC_FLAGS[0]}`;
}

/** The optimized object to open, and whether it is this checkout's cached one; null: use TinyCC. */
function optimizedObject(name: CLibrary): { path: string; cached: boolean } | null {
  const mode = process.env[ENV];
  if (mode === "tinycc") {
    note("info", `${ENV}=tinycc: the native C is compiled by TinyCC, unoptimized`);
    return null;
  }
  if (mode) note("warn", `${ENV}=${mode} is not a known value (only "tinycc"): ignored`);
  if (Bun.isStandaloneExecutable) {
    const files = Bun.embeddedFiles as ReadonlyArray<Blob & { name: string }>;
    const embedded = files.find((f) => objectPattern(name, true).test(f.name));
    // An embedded file's path is its name in the directory of the other embedded files (such as the C sources).
    if (embedded) return { path: materialize(join(dirname(mainSource(name)), embedded.name), `${name}.so`), cached: false };
    note("error", `the executable embeds no optimized build of ${name}: using TinyCC`);
    return null;
  }
  const compiler = findCompiler();
  if (!compiler) {
    note("warn", `no C compiler (${COMPILERS.join(" or ")}) on PATH: the native C is compiled by TinyCC, unoptimized; install gcc (bin/setup does) for the faster build`);
    return null;
  }
  try {
    return { path: buildObject(name, compiler), cached: true };
  } catch (e) {
    note("error", `cannot build ${mainSource(name)}, using TinyCC: ${(e as Error).message}`);
    return null;
  }
}

/** Opens the C library `name` with its symbol table, optimized when possible (see above). */
export function loadC<Fns extends Record<string, FFIFunction>>({ library: name, symbols }: { library: CLibrary; symbols: Fns }): Library<Fns> {
  loadLuaLibraries(); // the Lua API must be visible globally before either compiler's code links against it
  const object = optimizedObject(name);
  if (object) {
    try {
      const library = dlopen(object.path, symbols);
      builtBy.set(name, compiledBy(object.path));
      return library;
    } catch (e) {
      // A damaged object in the cache: removed, so that the next start builds it again.
      if (object.cached) rmSync(object.path, { force: true });
      note("error", `cannot open ${object.path}${object.cached ? " (removed)" : ""}, using TinyCC: ${(e as Error).message}`);
    }
  }
  builtBy.set(name, TINYCC);
  // Every file is copied out of the executable into one directory, so json.c's #include finds the others.
  const [main, ...included] = Object.entries(C_LIBRARIES[name]);
  for (const [file, path] of included) materialize(path, file);
  return cc({ source: materialize(main![1], main![0]), symbols });
}

/** Bun's own realloc and free (mimalloc), which the executable does not export: TinyCC links allocator.c against them. */
export function bunAllocator(): { realloc: Pointer; free: Pointer } {
  const { symbols } = cc({
    source: materialize(TINYCC_SOURCES["allocator.c"], "allocator.c"),
    symbols: { bun_realloc: { args: [], returns: "ptr" }, bun_free: { args: [], returns: "ptr" } },
  });
  return { realloc: symbols.bun_realloc() as Pointer, free: symbols.bun_free() as Pointer };
}

/** Which compiler built the C loaded so far, e.g. "gcc 12.2.0 -O2 (runtime.c, json.c)". */
export function nativeBuild(): string {
  const file = (name: CLibrary) => Object.keys(C_LIBRARIES[name])[0];
  const by = new Map<string, string[]>();
  for (const [name, how] of builtBy) by.set(how, [...(by.get(how) ?? []), file(name)!]);
  return [...by].map(([how, files]) => `${how} (${files.join(", ")})`).join("; ");
}

/** What loading the C chose or hit besides the normal case (TinyCC forced or fallen back to, and why). */
export function nativeNotes(): readonly NativeNote[] {
  return notes;
}
