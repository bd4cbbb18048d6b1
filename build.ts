// Builds the single-file connmix executable and the release tarball.
//
//   bun build.ts                 dist/connmix-linux-x64 and dist/connmix-<version>-linux-x64.tar.gz
//   bun build.ts --binary-only   only dist/connmix-linux-x64
//
// The executable is `bun build --compile` of src/main.ts for bun-linux-x64. Everything imported
// `with { type: "file" }` is embedded in it: liblua5.1 and LuaBitOp (imported by absolute system path in
// native/libs.ts, so the build machine needs the Debian packages liblua5.1-0 and lua-bitop) and the C
// sources (native/runtime.c, json.c, json-encode.c, json-decode.c, allocator.c). So are the optimized
// builds of runtime.c and json.c: this script compiles them first with the C compiler on PATH
// (native/compile.ts: `cc -O2 -fPIC -shared -nostdlib`, so the build machine needs Debian's gcc) and hands
// them to `bun build --compile` as extra entry points, which it embeds as files (Bun.embeddedFiles); the
// executable opens them, and compiles their sources with TinyCC only when CONNMIX_NATIVE=tinycc or they
// cannot be opened (allocator.c, always: it hands Lua Bun's own allocator). The result needs neither
// Bun, nor Lua, nor a C compiler or headers on the machine that runs it. After building, this script
// checks that the embedded pieces are really inside the executable.
//
// The tarball holds connmix-<version>/bin/connmix (the executable, where connmix's install page has it),
// the same file as connmix-<version>/connmix, conf/ and lua/, so that after unpacking
//   cd connmix-<version> && bin/connmix engine -f conf/connmix.yaml -p 2
// works (paths in the config resolve against the working directory).
//
// Outputs are written under temporary names and renamed into place, so a concurrent run or a test
// reading dist/ never sees a half-written file.
import { cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";

const root = import.meta.dir;
const dist = join(root, "dist");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const version = pkg.version;
const target = "bun-linux-x64";
const binary = join(dist, "connmix-linux-x64");
const releaseName = `connmix-${version}`;
const tarball = join(dist, `${releaseName}-linux-x64.tar.gz`);
const binaryOnly = process.argv.includes("--binary-only");

/** Files imported `with { type: "file" }` that must end up inside the executable (the C sources are added below). */
const embedded = ["/usr/lib/x86_64-linux-gnu/liblua5.1.so.0", "/usr/lib/x86_64-linux-gnu/liblua5.1-bitop.so.0"];

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function run(cmd: string[], cwd = root): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "inherit", stderr: "inherit" });
  const code = await proc.exited;
  if (code !== 0) fail(`${cmd.join(" ")} exited with ${code}`);
}

async function compile(): Promise<void> {
  const entry = join(root, "src/main.ts");
  if (!existsSync(entry)) fail("src/main.ts does not exist");
  for (const path of embedded) {
    if (!existsSync(path)) {
      fail(`${path} is missing; it gets embedded${path.startsWith("/usr/") ? " (run bin/setup to install it)" : ""}`);
    }
  }
  const objects = await compileC();
  mkdirSync(dist, { recursive: true });
  const tmp = `${binary}.${process.pid}.tmp`;
  const started = performance.now();
  try {
    // --sourcemap embeds a source map, so stack traces (and the log's caller field) name src/... files.
    await run([process.execPath, "build", "--compile", `--target=${target}`, "--sourcemap", entry, ...objects, "--outfile", tmp]);
    verifyEmbedded(tmp);
    renameSync(tmp, binary);
  } finally {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}.map`, { force: true }); // the source map is also embedded; the side file is not needed
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`build: ${basename(binary)} ${mb(statSync(binary).size)} (${target}, ${secs}s)`);
}

/** The optimized builds of the C libraries (native/out/), which the executable embeds; adds them and their sources to `embedded`. */
async function compileC(): Promise<string[]> {
  // Imported only now: the checks above explain a missing Lua library better than a failed import would.
  const { C_LIBRARIES, TINYCC_SOURCES, buildObject, findCompiler } = await import("./native/compile.ts");
  const compiler = findCompiler() ?? fail("no C compiler (cc or gcc) on PATH: the executable embeds native/*.c built with -O2 (Debian: apt-get install gcc)");
  const objects: string[] = [];
  for (const [name, sources] of Object.entries(C_LIBRARIES)) {
    try {
      objects.push(buildObject(name as keyof typeof C_LIBRARIES, compiler));
    } catch (e) {
      fail((e as Error).message);
    }
    embedded.push(...Object.values(sources));
  }
  embedded.push(...objects, ...Object.values(TINYCC_SOURCES));
  return objects;
}

/** Checks that each embedded file's bytes (a 512-byte slice from its middle, or all of it) are in `file`. */
function verifyEmbedded(file: string): void {
  const bytes = readFileSync(file);
  for (const path of embedded) {
    const content = readFileSync(path);
    const start = Math.max(0, Math.floor(content.length / 2) - 256);
    const needle = content.subarray(start, start + 512);
    if (bytes.indexOf(needle) < 0) fail(`${path} is not embedded in ${basename(file)}`);
  }
}

async function release(): Promise<void> {
  const stage = mkdtempSync(join(dist, ".stage-"));
  const tmp = `${tarball}.${process.pid}.tmp`;
  try {
    const top = join(stage, releaseName);
    mkdirSync(top);
    linkSync(binary, join(top, "connmix")); // hard links: no 100 MB copies (tar stores the second as a link)
    mkdirSync(join(top, "bin"));
    linkSync(binary, join(top, "bin/connmix"));
    for (const dir of ["conf", "lua"]) {
      const src = join(root, dir);
      if (!existsSync(src)) {
        console.warn(`build: warning: ${dir}/ does not exist yet; the tarball has no ${dir}/`);
        continue;
      }
      cpSync(src, join(top, dir), {
        recursive: true,
        filter: (path) => !basename(path).startsWith(".") && !path.endsWith(".log"),
      });
    }
    if (!existsSync(join(top, "conf/connmix.yaml"))) {
      console.warn("build: warning: no conf/connmix.yaml in the tarball");
    }
    const mtime = process.env.SOURCE_DATE_EPOCH ? `@${process.env.SOURCE_DATE_EPOCH}` : "now";
    await run(
      ["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", `--mtime=${mtime}`, "-czf", tmp, releaseName],
      stage,
    );
    renameSync(tmp, tarball);
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(tmp, { force: true });
  }
  console.log(`build: ${basename(tarball)} ${mb(statSync(tarball).size)} (${releaseName}/bin/connmix, connmix, conf/, lua/)`);
}

await compile();
if (!binaryOnly) await release();
