// Protected mode (issue 14): with no access.users, the engine and center APIs answer loopback clients only,
// and say so at start. The README's command and quick-start curl keep working. Other hosts are played by
// 192.0.2.1 inside a network namespace this test creates (netns-probe.ts), so nothing leaves the machine.
import { expect, test } from "bun:test";
import { cpSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/files.ts";
import { BUN, ROOT } from "../helpers/process.ts";

test("no access.users: loopback clients only, a WARN saying how to open up, and the README commands unchanged", async () => {
  const dir = tempDir("protected");
  cpSync(join(ROOT, "conf"), join(dir, "conf"), { recursive: true });
  symlinkSync(join(ROOT, "lua"), join(dir, "lua"));
  const setup = "ip link set lo up && ip addr add 192.0.2.1/32 dev lo";
  const probe = Bun.spawn(["unshare", "-n", "sh", "-c", `${setup} && exec "$0" "$1" "$2"`, BUN, join(import.meta.dir, "netns-probe.ts"), dir], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  const [out, err] = await Promise.all([new Response(probe.stdout).text(), new Response(probe.stderr).text()]);
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`netns probe printed no result (exit ${await probe.exited}):\n${out.slice(-2000)}\n${err.slice(-2000)}`);
  const r = JSON.parse(line.slice(7));
  expect(r.error).toBeUndefined();
  expect(r.quickStart).toBe('{"E":null,"r":{"s":1,"f":0}}');
  expect(r.memberHeard).toBe("hi from the backend");
  expect(r.fromOutside).toEqual({
    publish: "403 forbidden: the engine API answers loopback clients naming it by IP or localhost only, until access.users lists a user",
    metrics: "403",
    wsv1: 403,
    centerNodes: "403",
  });
  expect(r.rebound).toBe("403");
  // The APIs' protected mode, and the cluster's (no cluster.secret: the registry and mesh point take loopback peers only).
  expect(r.warnings).toHaveLength(4);
  expect(r.warnings[0]).toMatch(/\tWARN\t.*access\.users is empty: the center API answers loopback clients only \(protected mode\); list users under access\.users/);
  expect(r.warnings[1]).toMatch(/\tWARN\t.*no cluster\.secret is set: the registry takes connections from loopback addresses only \(protected mode\)\. To let other hosts join, set cluster\.secret/);
  expect(r.warnings[2]).toMatch(/\tWARN\t.*no cluster\.secret is set: the mesh point takes connections from loopback addresses only \(protected mode\)/);
  expect(r.warnings[3]).toMatch(/\tWARN\t.*access\.users is empty: the engine API answers loopback clients only/);
  expect(r.withUser).toEqual({ noCredentials: "401", credentials: "200", center: "200" });
}, 90_000);
