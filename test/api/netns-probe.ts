// Run by protected.test.ts inside a network namespace of its own (unshare -n) whose loopback interface also
// holds 192.0.2.1 (TEST-NET-1), so that a client there reaches the node from a non-loopback address while
// no packet leaves the namespace. Runs the README's command `connmix dev -f conf/connmix.yaml` (fixed ports
// are free in a fresh namespace) in the directory given as argv[2], calls its APIs from both addresses, and
// prints one line `RESULT <json>`.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll } from "../helpers/files.ts";
import { BUN, MAIN, Proc } from "../helpers/process.ts";
import { waitForPort } from "../helpers/ports.ts";
import { Client } from "../helpers/ws.ts";
import { upgradeStatus } from "./helpers.ts";

const dir = process.argv[2]!;
const OUTSIDE = "192.0.2.1";

/** Status of a request made with curl, which sends exactly the headers given (Host included). */
async function curl(url: string, ...args: string[]): Promise<string> {
  const p = Bun.spawn(["curl", "-s", "-w", "\n%{http_code}", ...args, url]);
  const out = await new Response(p.stdout).text();
  const nl = out.lastIndexOf("\n");
  return `${out.slice(nl + 1)} ${out.slice(0, nl).trim()}`;
}

const result: Record<string, unknown> = {};
try {
  const node = new Proc("connmix dev", [BUN, MAIN, "dev", "-f", "conf/connmix.yaml"], { cwd: dir });
  await node.waitFor("start the lua server");
  await waitForPort(6789);
  const member = await Client.open("ws://127.0.0.1:6790/chat");
  member.send({ op: "join", room_id: 1002 });
  await member.next();

  // The README's quick-start curl, word for word.
  const quick = Bun.spawn(["sh", "-c", `curl -s -XPOST 127.0.0.1:6789/v1/mesh/publish -d '{"c":"room:1002","d":"hi from the backend"}'`]);
  result.quickStart = await new Response(quick.stdout).text();
  result.memberHeard = String(await member.next());

  result.fromOutside = {
    publish: await curl(`http://${OUTSIDE}:6789/v1/mesh/publish`, "-d", '{"c":"room:1002","d":"x"}'),
    metrics: (await curl(`http://${OUTSIDE}:6789/metrics`)).slice(0, 3),
    wsv1: await upgradeStatus(6789, "/ws/v1", {}, OUTSIDE),
    centerNodes: (await curl(`http://${OUTSIDE}:6787/v1/nodes`)).slice(0, 3),
  };
  // A DNS-rebinding page reaches 127.0.0.1 under its own name.
  result.rebound = (await curl("http://127.0.0.1:6789/metrics", "-H", "Host: evil.example:6789")).slice(0, 3);
  result.warnings = node.out.split("\n").filter((l) => l.includes("protected mode"));

  // Listing a user opens the API to other hosts, with credentials, without a restart.
  const conf = join(dir, "conf/connmix.yaml");
  writeFileSync(conf, readFileSync(conf, "utf8").replace("  users: []", '  users:\n    - { username: backend, password: s3cret, roles: [read, write], host: "*" }'));
  await node.waitFor("reloaded");
  result.withUser = {
    noCredentials: (await curl(`http://${OUTSIDE}:6789/metrics`)).slice(0, 3),
    credentials: (await curl(`http://${OUTSIDE}:6789/metrics`, "-u", "backend:s3cret")).slice(0, 3),
    center: (await curl(`http://${OUTSIDE}:6787/v1/nodes`, "-u", "backend:s3cret")).slice(0, 3),
  };
  member.close();
} catch (e) {
  result.error = String((e as Error).stack ?? e);
} finally {
  await cleanupAll();
}
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(0);
