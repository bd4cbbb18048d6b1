// The compiled executable and the release tarball, checked the way a user meets them: unpack the tarball
// on a machine without Lua, without C headers and without Bun, and run ./connmix.
//
// "A machine without Lua" is simulated inside a private mount namespace (`unshare -m`, root only): the
// system's liblua5.1 / LuaBitOp / Lua C modules are covered by bind mounts of /dev/null, the C headers,
// compiler directories and libc development files are covered by empty tmpfs mounts (proving that neither
// the embedded -O2 build of the native C nor its TinyCC fallback needs them), and so is this whole checkout
// (so neither native/runtime.c, native/out/ nor node_modules/.bin/bun can be used). The mounts exist only inside that namespace; the machine and
// other processes do not see them.
//
// The binary is (re)built with `bun build.ts` when dist/ is missing it or any source is newer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import YAML from "yaml";
import { cleanupAll, tempDir } from "./helpers/files.ts";
import { freePorts } from "./helpers/ports.ts";
import { Proc, ROOT, runSync } from "./helpers/process.ts";
import { BUILD_TIMEOUT_MS, TARBALL, VERSION, buildIfStale } from "./helpers/build.ts";

const version = VERSION;
const tarball = TARBALL;
const releaseDir = `connmix-${version}`;
const BANNER = `connmix${version}, bun${Bun.version}, lua5.1+bitop, linux, x64`;

// ---------------------------------------------------------------------------------------------------
// What gets hidden inside the namespace.
const LIBDIR = "/usr/lib/x86_64-linux-gnu";
const hiddenFiles = () => {
  const names = readdirSync(LIBDIR).filter((n) => /^liblua5\.1.*\.so/.test(n) || /^liblua5\.\d-bitop\.so/.test(n));
  const candidates = [
    ...names.map((n) => join(LIBDIR, n)),
    `${LIBDIR}/libc.so`, // the linker script of libc6-dev
    `${LIBDIR}/libc_nonshared.a`,
    ...["crt1.o", "crti.o", "crtn.o", "Scrt1.o"].map((n) => join(LIBDIR, n)),
  ];
  // bind mounts follow symlinks: cover each real file once
  return [...new Set(candidates.filter((p) => existsSync(p)).map((p) => realpathSync(p)))];
};
const hiddenDirs = () =>
  [
    "/usr/include",
    "/usr/local/include",
    "/usr/lib/gcc",
    "/usr/lib/tcc",
    "/usr/local/lib/tcc",
    `${LIBDIR}/lua`,
    "/usr/lib/lua",
    "/usr/local/lib/lua",
    "/usr/share/lua",
    "/usr/local/share/lua",
    ROOT, // the checkout: native/runtime.c, src/, node_modules/.bin/bun
  ].filter((d) => existsSync(d));

/** A shell script that hides everything, checks that it is hidden, then execs "$@" in the cwd. */
function isolationScript(): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const lines = ["set -e", 'cd "$CONNMIX_TEST_CWD"'];
  for (const f of hiddenFiles()) lines.push(`mount --bind /dev/null ${q(f)}`);
  for (const d of hiddenDirs()) lines.push(`mount -t tmpfs -o size=64k,mode=0755 connmix-hidden ${q(d)}`);
  lines.push(
    `if [ -s ${LIBDIR}/liblua5.1.so.0 ] || [ -n "$(ls -A /usr/include)" ] || [ -e ${q(join(ROOT, "native/runtime.c"))} ]; then`,
    '  echo "isolation failed: system Lua, headers or the checkout are still visible" >&2; exit 99',
    "fi",
    'exec "$@"',
  );
  return lines.join("\n");
}

/** Runs `cmd` (relative to `cwd`) with the system Lua, headers and checkout hidden, `env` added. */
function runIsolated(cmd: string[], cwd: string, env: Record<string, string> = {}) {
  return Bun.spawnSync(["unshare", "-m", "sh", "-c", isolationScript(), "isolated", ...cmd], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 30_000,
    env: { ...process.env, CONNMIX_NATIVE: "", ...env, CONNMIX_TEST_CWD: cwd },
  });
}

/** The line `connmix version` ends with: which compiler built the native C. */
const OPTIMIZED = /^native C: gcc \d+\.\d+\.\d+ -O2 \(runtime\.c, json\.c\)$/m;

const isolationUnavailable = (() => {
  if (process.getuid?.() !== 0) return "not running as root";
  if (!Bun.which("unshare")) return "unshare (util-linux) is not installed";
  const probe = Bun.spawnSync(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], { stderr: "pipe" });
  if (probe.exitCode !== 0) return `unshare -m does not work here: ${probe.stderr.toString().trim()}`;
  return "";
})();
if (isolationUnavailable) {
  console.warn(
    `binary.test.ts: SKIPPING the tests that hide the system Lua libraries (${isolationUnavailable}); ` +
      "run as root on Linux to check that the executable is self-contained.",
  );
}
const testIsolated = isolationUnavailable ? test.skip : test;

let work = "";
let unpacked = "";

beforeAll(() => {
  console.log(`binary.test.ts: ${buildIfStale()}`);
  work = tempDir("binary-test");
  const r = runSync(["tar", "xzf", tarball, "-C", work], work);
  if (r.code !== 0) throw new Error(`cannot unpack ${tarball}: ${r.err}`);
  unpacked = join(work, releaseDir);
}, BUILD_TIMEOUT_MS + 30_000);

afterAll(cleanupAll);

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const n of readdirSync(p)) {
      if (n.startsWith(".")) continue;
      const full = join(p, n);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

describe("release tarball", () => {
  test(`unpacks to ${releaseDir}/ with the executable, conf/ and lua/`, () => {
    const exe = join(unpacked, "connmix");
    expect(existsSync(exe)).toBe(true);
    expect(statSync(exe).mode & 0o111).toBe(0o111);
    expect(statSync(exe).size).toBeGreaterThan(50 * 1024 * 1024); // Bun runtime + bundle + Lua libraries
    for (const dir of ["conf", "lua"]) {
      expect(listFiles(join(unpacked, dir))).toEqual(listFiles(join(ROOT, dir)));
    }
    if (existsSync(join(ROOT, "conf/connmix.yaml"))) {
      expect(existsSync(join(unpacked, "conf/connmix.yaml"))).toBe(true);
    }
  });

  test("the executable runs `version` outside the sandbox too, as ./connmix and as bin/connmix", () => {
    for (const exe of ["./connmix", "bin/connmix"]) {
      const r = runSync([exe, "version"], unpacked);
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
      expect(r.out).toContain(version);
      expect(r.out).toContain("Lua 5.1 bit=000000ff");
      expect(r.out).toMatch(OPTIMIZED);
    }
  });

  test("bin/connmix is where connmix's install page has it: the same file as ./connmix, and it starts a node", async () => {
    expect(statSync(join(unpacked, "bin/connmix")).ino).toBe(statSync(join(unpacked, "connmix")).ino);
    const [registry, centerApi, mesh, api, lua] = freePorts(5);
    const cfg = YAML.parse(readFileSync(join(unpacked, "conf/connmix.yaml"), "utf8"));
    cfg.logging.filename = "logs/bin.log";
    cfg.center = { registry: { port: registry, bind: "127.0.0.1" }, apiServer: { port: centerApi, bind: "127.0.0.1" } };
    Object.assign(cfg.engine, { centerRegistry: `127.0.0.1:${registry}`, meshPoint: { port: mesh, bind: "127.0.0.1" } });
    cfg.engine.apiServer = { ...cfg.engine.apiServer, port: api, bind: "127.0.0.1" };
    cfg.engine.servers = [{ ...cfg.engine.servers[0], port: lua, bind: "127.0.0.1" }];
    writeFileSync(join(unpacked, "bin.yaml"), YAML.stringify(cfg));
    const proc = new Proc("bin/connmix dev", ["bin/connmix", "dev", "-f", "bin.yaml", "-p", "1"], { cwd: unpacked });
    await proc.waitFor(/start the lua server \S+\/lua\/entry\.websocket\.lua/, 20_000);
    expect(await proc.stop("SIGTERM")).toBe(0);
  }, 30_000);
});

describe("self-contained executable (system Lua, C headers and the checkout hidden)", () => {
  testIsolated("isolation really hides the system Lua library", () => {
    const r = runIsolated(["sh", "-c", `wc -c < ${LIBDIR}/liblua5.1.so.0; ls -A /usr/include | wc -l`], unpacked);
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString().split(/\s+/).filter(Boolean)).toEqual(["0", "0"]);
  });

  testIsolated("`connmix version` prints the version and a Lua-evaluated result", () => {
    const r = runIsolated(["./connmix", "version"], unpacked);
    const out = r.stdout.toString();
    const err = r.stderr.toString();
    expect({ code: r.exitCode, err }).toEqual({ code: 0, err: "" });
    expect(out).toContain(version);
    // _VERSION .. " bit=" .. require("bit").tohex(255), evaluated by the embedded liblua5.1 + LuaBitOp,
    // after the runaway guard stopped a runaway loop (src/cli/selfcheck.ts), in the embedded -O2 build of
    // runtime.c: no compiler, no headers, no checkout
    expect(out).toContain("Lua 5.1 bit=000000ff");
    expect(out).toMatch(OPTIMIZED);
  });

  testIsolated("CONNMIX_NATIVE=tinycc: the executable compiles its embedded C sources with TinyCC, without headers", () => {
    const r = runIsolated(["./connmix", "version"], unpacked, { CONNMIX_NATIVE: "tinycc" });
    expect({ code: r.exitCode, err: r.stderr.toString() }).toEqual({ code: 0, err: "" });
    expect(r.stdout.toString()).toContain("Lua 5.1 bit=000000ff");
    expect(r.stdout.toString()).toMatch(/^native C: TinyCC \(bun:ffi\), unoptimized \(runtime\.c, json\.c\)$/m);
  });

  // Runs once the shipped configuration and the Lua entry files it names exist in the checkout.
  const devMissing = (() => {
    const conf = join(ROOT, "conf/connmix.yaml");
    if (!existsSync(conf)) return "conf/connmix.yaml";
    const servers = (YAML.parse(readFileSync(conf, "utf8"))?.engine?.servers ?? []) as Array<{ entry?: string }>;
    return servers.map((s) => s.entry ?? "").filter((e) => e && !existsSync(join(ROOT, e))).join(", ");
  })();
  const devTest = devMissing ? test.skip : testIsolated;
  if (devMissing) {
    console.warn(`binary.test.ts: SKIPPING the \`connmix dev\` banner test: ${devMissing} does not exist in the checkout yet`);
  }

  devTest(
    "`connmix dev -f conf/connmix.yaml -p 1` prints the banner line and starts",
    async () => {
      const ports = freePorts(5);
      const cfg = YAML.parse(readFileSync(join(unpacked, "conf/connmix.yaml"), "utf8")) ?? {};
      cfg.center ??= {};
      cfg.center.registry = { ...cfg.center.registry, port: ports[0], bind: "127.0.0.1" };
      cfg.center.apiServer = { ...cfg.center.apiServer, port: ports[1], bind: "127.0.0.1" };
      cfg.engine ??= {};
      cfg.engine.centerRegistry = `127.0.0.1:${ports[0]}`;
      cfg.engine.meshPoint = { ...cfg.engine.meshPoint, port: ports[2], bind: "127.0.0.1" };
      cfg.engine.apiServer = { ...cfg.engine.apiServer, port: ports[3], bind: "127.0.0.1" };
      cfg.engine.servers = (cfg.engine.servers ?? []).slice(0, 1).map((s: object) => ({ ...s, port: ports[4], bind: "127.0.0.1" }));
      writeFileSync(join(unpacked, "conf/test.yaml"), YAML.stringify(cfg));

      const proc = new Proc("connmix dev", ["unshare", "-m", "sh", "-c", isolationScript(), "isolated", "./connmix", "dev", "-f", "conf/test.yaml", "-p", "1"], {
        cwd: unpacked,
        env: { CONNMIX_TEST_CWD: unpacked },
      });
      let page = "";
      try {
        await proc.waitFor(BANNER, 20_000);
        await proc.waitFor("start the lua server", 20_000);
        page = await (await fetch(`http://127.0.0.1:${ports[1]}/console/`)).text(); // embedded in the executable
      } finally {
        await proc.stop("SIGTERM", 5_000);
      }
      const context = `stdout and stderr:\n${proc.out}`;
      expect(proc.stdout.split("\n").map((l) => l.trim()), context).toContain(BANNER);
      expect(proc.stdout, context).toContain("start the lua server");
      expect(page).toContain("<title>connmix console</title>");
    },
    40_000,
  );

  test("the executable runs `connmix test` on the shipped entry and its case file", () => {
    const r = runSync(["./connmix", "test", "lua/entry.websocket.lua", "lua/entry.websocket.test.yaml"], unpacked);
    expect(r.out).toMatch(/^[1-9]\d* passed, 0 failed$/m);
    expect(r.code).toBe(0);
  });
});
