// The SDK under Node 20 (no global WebSocket there: it uses the ws package): the bundle from
// sdk/typescript/build.ts, imported by a plain .mjs program run with `node`, discovers the engines
// through a real center, consumes a queue item, answers with send and publishes; its declarations type
// a TypeScript program compiled for Node.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSdk } from "../../sdk/typescript/build.ts";
import { tempDir } from "../helpers/files.ts";
import { Proc, ROOT, runSync } from "../helpers/process.ts";
import { SdkCluster } from "./cluster.ts";

const cluster = new SdkCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const PROGRAM = `
import { Connmix } from "./connmix.js";
console.log("global WebSocket: " + typeof globalThis.WebSocket);
const cm = new Connmix({ center: process.argv[2], refreshMs: 200 });
await cm.start();
while (cm.nodes().filter((n) => n.connected).length < 2) await new Promise((r) => setTimeout(r, 20));
console.log("engines " + cm.nodes().length);
const consumer = cm.consume(["jobs"], async (item) => {
  await cm.send(item.c, "got " + item.d);
  const r = await cm.publish("news", "from node");
  console.log("published " + JSON.stringify(r));
  await consumer.stop();
  cm.close();
});
console.log("consuming");
`;

const TYPED = `
import { Connmix, ConnmixError, CODE, type QueueItem } from "./connmix.js";
const cm = new Connmix({ center: "http://127.0.0.1:6787" });
export async function main(): Promise<void> {
  const r: { s: number; f: number } = await cm.publish("room:1", "hi");
  await cm.conn("1").setContextValue("uid", 42);
  cm.consume<{ uid?: string }>(["chat"], (item: QueueItem<{ uid?: string }>) => item.d.uid);
  try { await cm.send(1, "x"); } catch (e) { if (e instanceof ConnmixError && e.code === CODE.sendFailed) console.log(r); }
}
`;
const TSCONFIG = { compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", lib: ["es2022", "dom"], types: [], noEmit: true } };

test("the bundle's type declarations type a TypeScript program for Node, and catch a wrong method", () => {
  const dir = tempDir("sdk-types");
  return buildSdk(dir).then(() => {
    writeFileSync(join(dir, "ok.ts"), TYPED);
    writeFileSync(join(dir, "bad.ts"), 'import { Connmix } from "./connmix.js";\nvoid new Connmix({ center: "x" }).conn(1).call("drop_table");\n');
    // One tsc run over both: the only error is bad.ts's (ok.ts is typed right).
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ ...TSCONFIG, files: ["ok.ts", "bad.ts"] }));
    const r = runSync([join(ROOT, "node_modules/.bin/tsc"), "-p", "tsconfig.json"], dir, 100_000);
    expect(r.out.trim().split("\n")).toEqual([
      `bad.ts(2,48): error TS2345: Argument of type '"drop_table"' is not assignable to parameter of type '"set_context_value" | "set_context" | "subscribe" | "unsubscribe"'.`,
    ]);
  });
}, 120_000);

test("a Node 20 program using the bundled SDK consumes, sends and publishes", async () => {
  const dir = tempDir("sdk-node");
  await buildSdk(dir, { types: false });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules")); // ws, as an application would have it
  writeFileSync(join(dir, "main.mjs"), PROGRAM);
  const node = new Proc("node", ["node", "main.mjs", cluster.centerUrl], { cwd: dir });
  await node.waitFor("consuming", 15_000);
  expect(node.out).toContain("global WebSocket: undefined\nengines 2\n");
  const [a, id] = await cluster.client(0);
  const [b] = await cluster.client(1);
  expect(await b.ask("sub news")).toBe("subscribed news");
  a.send("q hello");
  expect(await a.next()).toBe("got hello");
  expect(await b.next()).toBe("from node");
  await node.waitFor('published {"s":1,"f":0}');
  expect(await node.proc.exited).toBe(0); // closed everything: nothing kept the process alive
  void id;
  a.close();
  b.close();
}, 60_000);
