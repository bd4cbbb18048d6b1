// Bundles the SDK into one ES module for Node (18+) and Bun: dist/connmix.js. `ws` stays an import, used
// only where there is no global WebSocket (Node 20). Usage: bun sdk/typescript/build.ts [outdir]
import { join } from "node:path";

export async function buildSdk(outdir: string): Promise<string> {
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "index.ts")],
    outdir,
    target: "node",
    format: "esm",
    naming: "connmix.js",
    external: ["ws"],
  });
  if (!result.success) throw new Error(`sdk build failed: ${result.logs.map(String).join("\n")}`);
  return join(outdir, "connmix.js");
}

if (import.meta.main) console.log(await buildSdk(process.argv[2] ?? join(import.meta.dir, "dist")));
