// deploy/monitoring: promtool checks the alert rules and runs their unit tests (every alert fires from
// sample series), and every metric the rules and the Grafana dashboard use is served by a real `connmix
// dev` node's /metrics (center and engine).
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { cleanupAll, tempDir } from "../helpers/files.ts";
import { ROOT } from "../helpers/process.ts";

const DIR = join(ROOT, "deploy/monitoring");

async function run(args: string[], cwd = DIR): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["promtool", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, out: out + err };
}

const rules = parse(readFileSync(join(DIR, "alerts.yml"), "utf8")).groups.flatMap((g: { rules: { alert: string; expr: string }[] }) => g.rules);
const dashboard = JSON.parse(readFileSync(join(DIR, "grafana-dashboard.json"), "utf8"));
const dashboardExprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));

/** Metric names in a PromQL expression (identifiers followed by `{`, `[` or an operator, not functions or labels). */
function metricNames(expr: string): string[] {
  const names = expr.match(/\b(?:connmix|process|bun)_[a-z_]+\b|\bup\b/g) ?? [];
  return [...new Set(names)];
}

describe("alert rules", () => {
  test("promtool check rules and check config accept them", async () => {
    const rulesCheck = await run(["check", "rules", "alerts.yml"]);
    expect(rulesCheck.out).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(rulesCheck.code).toBe(0);
    const config = await run(["check", "config", "prometheus.yml"]);
    expect(config.code).toBe(0);
  });

  test("promtool test rules: each alert fires from sample series", async () => {
    const result = await run(["test", "rules", "alerts.test.yml"]);
    expect(result.out).toContain("SUCCESS");
    expect(result.code).toBe(0);
    const tests = parse(readFileSync(join(DIR, "alerts.test.yml"), "utf8")).tests as { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    const fired = new Set(tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    expect([...fired].sort()).toEqual(rules.map((r: { alert: string }) => r.alert).sort());
    expect(rules.length).toBeGreaterThanOrEqual(10);
  });

  test("a broken expectation makes promtool test rules fail", async () => {
    // The unit test is only worth something if it can fail: flip one expected label and run it again.
    const dir = tempDir("rules");
    copyFileSync(join(DIR, "alerts.yml"), join(dir, "alerts.yml"));
    const broken = readFileSync(join(DIR, "alerts.test.yml"), "utf8").replace("topic: orders }", "topic: nope }");
    writeFileSync(join(dir, "alerts.test.yml"), broken);
    const result = await run(["test", "rules", "alerts.test.yml"], dir);
    expect(result.code).not.toBe(0);
    expect(result.out).toContain('FAILED:\n    name: queues nearly full, full, dropping,\n    alertname: ConnmixQueueNearlyFull');
  });
});

describe("metrics used by the rules and the dashboard", () => {
  const cluster = new ClusterDir();
  afterAll(async () => {
    await cleanupAll(); // stops the dev node (it outlived the suite before)
    cluster.remove();
  });

  test("are served by a real center and engine", async () => {
    const [config, ports] = cluster.dev();
    const node = new Node("dev", config, cluster.dir, "1");
    await node.waitFor(/start the lua server/, 15_000);
    // The queue gauges have a sample once a topic exists: consume one over /ws/v1.
    const ws = new WebSocket(`ws://127.0.0.1:${ports.api}/ws/v1`);
    await new Promise((r) => (ws.onopen = r));
    ws.send(JSON.stringify({ m: "queue.pop", p: { t: ["chat"] }, i: 1 }));
    await new Promise((r) => (ws.onmessage = r));
    const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let served = "";
    for (const end = Date.now() + 10_000; !served.includes("\nconnmix_center_registry_engine_nodes 1\n") && Date.now() < end; await Bun.sleep(50)) {
      served = (await scrape(ports.api)) + (await scrape(cluster.centerApi));
    }
    ws.close();
    const used = new Set([...rules.map((r: { expr: string }) => r.expr), ...dashboardExprs].flatMap(metricNames));
    used.delete("up"); // Prometheus's own
    const missing = [...used].filter((name) => !served.includes(`# TYPE ${name} `)).sort();
    expect(missing).toEqual([]);
    expect(served).toMatch(/^connmix_engine_queue_consumers\{topic="chat"\} 1$/m);
    expect(served).toMatch(/^connmix_engine_queue_topic_size 2000$/m);
  }, 30_000);

  test("the dashboard is Grafana JSON with a datasource variable and a panel per area", () => {
    expect(dashboard.uid).toBe("connmix");
    expect(dashboard.templating.list.map((v: { name: string }) => v.name)).toEqual(["datasource", "engine_job", "center_job", "instance"]);
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) expect(p.datasource.uid).toBe("${datasource}");
  });
});
