// Bundles the SDK into one ES module for Node (18+) and Bun: <outdir>/connmix.js, with its type
// declarations (<outdir>/connmix.d.ts and <outdir>/types/, emitted by tsc from the same sources, the
// server's protocol module included). `ws` stays an import, used only where there is no global WebSocket
// (Node 20). Usage: bun sdk/typescript/build.ts [outdir]
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** Every .d.ts under `dir`, recursively. */
function declarations(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? declarations(path) : path.endsWith(".d.ts") ? [path] : [];
  });
}

function emitTypes(outdir: string): void {
  const types = join(outdir, "types");
  const tsc = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), join(import.meta.dir, "index.ts"), "--declaration", "--emitDeclarationOnly",
    "--outDir", types, "--rootDir", ROOT, "--allowImportingTsExtensions", "--module", "esnext", "--target", "esnext",
    "--moduleResolution", "bundler", "--skipLibCheck", "--strict", "--types", "bun-types"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (tsc.exitCode !== 0) throw new Error(`sdk types: tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  // The sources import with .ts extensions (Bun's style); the declarations sit beside .js modules.
  for (const file of declarations(types)) {
    writeFileSync(file, readFileSync(file, "utf8").replace(/(from\s+"\.{1,2}\/[^"]*)\.ts"/g, '$1.js"'));
  }
  writeFileSync(join(outdir, "connmix.d.ts"), 'export * from "./types/sdk/typescript/index.js";\n');
}

/** `types: false` skips the declarations (a tsc run: seconds). */
export async function buildSdk(outdir: string, opts: { types?: boolean } = {}): Promise<string> {
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "index.ts")],
    outdir,
    target: "node",
    format: "esm",
    naming: "connmix.js",
    external: ["ws"],
  });
  if (!result.success) throw new Error(`sdk build failed: ${result.logs.map(String).join("\n")}`);
  if (opts.types !== false) emitTypes(outdir);
  return join(outdir, "connmix.js");
}

if (import.meta.main) console.log(await buildSdk(process.argv[2] ?? join(import.meta.dir, "dist")));
