// deploy/ checked offline: every YAML parses, the Kubernetes objects reference each other correctly
// (selectors, ports, names) and agree with the connmix.yaml they ship and with the Dockerfile; the
// Dockerfile exposes the ports conf/connmix.yaml uses; docs/deployment.md shows deploy/ files verbatim.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix, relative } from "node:path";
import YAML, { parseAllDocuments } from "yaml";
import { writeFileSync } from "node:fs";
import { tempDir } from "../helpers/files.ts";
import { parseConfig, type Config } from "../../src/config/index.ts";
import { execForm, last, readDockerfile } from "./dockerfile.ts";
import { ROOT } from "../helpers/process.ts";

const DEPLOY = join(ROOT, "deploy");
const K8S = join(DEPLOY, "k8s");

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => ext.test(f)).map((f) => join(dir, f)).sort();
}

// Kubernetes objects, loosely typed: the checks below say what they need.
type Obj = {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};

const objects: Obj[] = [];
for (const file of files(DEPLOY, /\.ya?ml$/)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) throw new Error(`${relative(ROOT, file)}: ${doc.errors[0]!.message}`);
    const o = doc.toJS();
    if (o && file.startsWith(K8S) && !file.endsWith("kustomization.yaml")) objects.push(o);
  }
}
const find = (kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return o;
};
const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
const container = (d: Obj) => d.spec.template.spec.containers[0];
const containerPort = (d: Obj, ref: string | number): number => {
  const ports: { name?: string; containerPort: number }[] = container(d).ports;
  const p = typeof ref === "number" ? ports.find((x) => x.containerPort === ref) : ports.find((x) => x.name === ref);
  if (!p) throw new Error(`${d.metadata.name}: no container port ${ref}`);
  return p.containerPort;
};
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
/** The Deployment a Service selects (exactly one). */
const selected = (svc: Obj) => {
  const ds = ofKind("Deployment").filter((d) => matches(svc.spec.selector, d.spec.template.metadata.labels));
  if (ds.length !== 1) throw new Error(`Service ${svc.metadata.name} selects ${ds.length} Deployments`);
  return ds[0]!;
};
/** The container port behind a Service port (by number or name). */
const target = (svc: Obj, port: number | string) => {
  const sp = svc.spec.ports.find((p: { port: number; name?: string }) => p.port === port || p.name === port);
  if (!sp) throw new Error(`Service ${svc.metadata.name} has no port ${port}`);
  return containerPort(selected(svc), sp.targetPort ?? sp.port);
};

const configMap = find("ConfigMap", "connmix-config");
const confText: string = configMap.data["connmix.yaml"];
/** Where the pods read cluster.secretFile (from the Secret the Deployments mount); a local stand-in for parsing. */
const secretPath = YAML.parse(confText).cluster.secretFile as string;
const standIn = join(tempDir("manifests"), "secret");
writeFileSync(standIn, "a-stand-in-secret-of-32-characters\n");
const conf: Config = parseConfig(confText.replace(secretPath, standIn), "deploy/k8s/configmap.yaml", { mode: "center" });
const center = find("Deployment", "connmix-center");
const engine = find("Deployment", "connmix-engine");
const finalStage = readDockerfile().at(-1)!;
const workdir = last(finalStage, "WORKDIR")!.args;

describe("Kubernetes manifests (deploy/k8s)", () => {
  test("kustomization lists every manifest and names the image the Deployments use", () => {
    const k = parseAllDocuments(readFileSync(join(K8S, "kustomization.yaml"), "utf8"))[0]!.toJS();
    const manifests = files(K8S, /\.yaml$/).map((f) => relative(K8S, f)).filter((f) => f !== "kustomization.yaml");
    expect([...k.resources].sort()).toEqual(manifests);
    for (const d of ofKind("Deployment")) expect(k.images.map((i: { name: string }) => i.name)).toContain(container(d).image);
  });

  test("the shipped connmix.yaml is valid and its entry scripts are in the image", () => {
    for (const s of conf.engine.servers) {
      const entry = relative(process.cwd(), s.entry);
      expect(existsSync(join(ROOT, entry))).toBe(true);
      expect(entry.startsWith("lua/")).toBe(true); // the image has lua/ (COPY --from=build /src/lua lua)
    }
    expect(finalStage.steps.some((s) => s.op === "COPY" && / lua$/.test(s.args))).toBe(true);
  });

  test("every Deployment's selector matches its pod labels, and pods mount the config where -f reads it", () => {
    for (const d of ofKind("Deployment")) {
      expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
      const c = container(d);
      const file = c.args[c.args.indexOf("-f") + 1];
      const volume = d.spec.template.spec.volumes.find((v: { configMap?: { name: string } }) => v.configMap?.name === "connmix-config");
      const mount = c.volumeMounts.find((m: { name: string }) => m.name === volume.name);
      expect(posix.join(mount.mountPath, "connmix.yaml")).toBe(posix.join(workdir, file));
      for (const probe of [c.readinessProbe, c.livenessProbe]) containerPort(d, probe.tcpSocket.port);
    }
  });

  test("every pod reads cluster.secretFile from the Secret connmix-cluster, which the manifests do not ship", () => {
    expect(conf.cluster.secret).toEqual(["a-stand-in-secret-of-32-characters"]);
    for (const d of ofKind("Deployment")) {
      const volume = d.spec.template.spec.volumes.find((v: { secret?: { secretName: string } }) => v.secret?.secretName === "connmix-cluster");
      const mount = container(d).volumeMounts.find((m: { name: string }) => m.name === volume.name);
      expect(posix.join(mount.mountPath, "secret")).toBe(secretPath);
      expect(mount.readOnly).toBe(true);
    }
    expect(ofKind("Secret")).toEqual([]); // a secret in the repository would be everyone's: each cluster makes its own
  });

  test("NetworkPolicies let only engine pods reach the registry and the mesh ports", () => {
    const policyFor = (d: Obj) => {
      const ps = ofKind("NetworkPolicy").filter((p) => matches(p.spec.podSelector.matchLabels, d.spec.template.metadata.labels));
      expect(ps.length).toBe(1);
      expect(ps[0]!.spec.policyTypes).toEqual(["Ingress"]);
      return ps[0]!;
    };
    /** The pods' labels a rule admits from, per container port it opens ("any" for a rule without `from`). */
    const admitted = (d: Obj) => {
      const out = new Map<number, (Record<string, string> | "any")[]>();
      for (const rule of policyFor(d).spec.ingress) {
        const from = rule.from ? rule.from.map((f: { podSelector: { matchLabels: Record<string, string> } }) => f.podSelector.matchLabels) : ["any"];
        for (const p of rule.ports) out.set(containerPort(d, p.port), [...(out.get(containerPort(d, p.port)) ?? []), ...from]);
      }
      return out;
    };
    const enginePods = engine.spec.template.metadata.labels;
    const onlyEngines = (froms: (Record<string, string> | "any")[] | undefined) =>
      froms !== undefined && froms.length > 0 && froms.every((f) => f !== "any" && matches(f, enginePods));
    const c = admitted(center);
    expect(onlyEngines(c.get(conf.center.registry.port))).toBe(true);
    expect(c.get(conf.center.apiServer.port)).toEqual(["any"]);
    const e = admitted(engine);
    expect(onlyEngines(e.get(conf.engine.meshPoint.port))).toBe(true);
    expect(e.get(conf.engine.apiServer.port)).toEqual(["any"]);
    for (const s of conf.engine.servers) expect(e.get(s.port)).toEqual(["any"]);
  });

  test("one center pod, recreated rather than rolled, listening where the config says", () => {
    expect(center.spec.replicas).toBe(1);
    expect(center.spec.strategy.type).toBe("Recreate");
    expect(container(center).args[0]).toBe("center");
    expect(containerPort(center, "registry")).toBe(conf.center.registry.port);
    expect(containerPort(center, "api")).toBe(conf.center.apiServer.port);
  });

  test("engines find the center through its Service, on the registry port", () => {
    const [host, port] = conf.engine.centerRegistry.split(":");
    const svc = find("Service", host!);
    expect(selected(svc)).toBe(center);
    expect(target(svc, Number(port))).toBe(conf.center.registry.port);
  });

  test("engine pods expose the mesh, API and Lua ports of the config, and the engine Service reaches them", () => {
    expect(container(engine).args[0]).toBe("engine");
    expect(engine.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(containerPort(engine, "mesh")).toBe(conf.engine.meshPoint.port);
    expect(containerPort(engine, "api")).toBe(conf.engine.apiServer.port);
    for (const s of conf.engine.servers) containerPort(engine, s.port);
    const svc = find("Service", "connmix-engine");
    expect(selected(svc)).toBe(engine);
    expect(target(svc, "lua")).toBe(conf.engine.servers[0]!.port);
    expect(target(svc, "api")).toBe(conf.engine.apiServer.port);
  });

  test("the Ingress sends the WebSocket path to the engines' Lua port, with timeouts above readTimeout", () => {
    const [ingress] = ofKind("Ingress");
    const path = ingress!.spec.rules[0].http.paths[0];
    const server = conf.engine.servers[0]!;
    expect(path.path).toBe(server.options.find((o) => o.name === "path")!.value);
    const svc = find("Service", path.backend.service.name);
    expect(target(svc, path.backend.service.port.name ?? path.backend.service.port.number)).toBe(server.port);
    const a = ingress!.metadata.annotations ?? {};
    expect(Number(a["nginx.ingress.kubernetes.io/proxy-read-timeout"])).toBeGreaterThan(server.readTimeout);
    expect(ingress!.spec.tls[0].hosts).toEqual([ingress!.spec.rules[0].host]);
  });
});

describe("Dockerfile (deploy/Dockerfile)", () => {
  test("exposes exactly the ports of conf/connmix.yaml and runs an engine on it by default", () => {
    const shipped = parseConfig(readFileSync(join(ROOT, "conf/connmix.yaml"), "utf8"), "conf/connmix.yaml", { mode: "center" });
    const ports = [
      shipped.center.registry.port, shipped.center.apiServer.port, shipped.engine.meshPoint.port,
      shipped.engine.apiServer.port, ...shipped.engine.servers.map((s) => s.port),
    ];
    const exposed = last(finalStage, "EXPOSE")!.args.split(/\s+/).map(Number);
    expect(exposed.sort()).toEqual(ports.sort());
    expect(execForm(last(finalStage, "ENTRYPOINT"))).toEqual(["./connmix"]);
    expect(execForm(last(finalStage, "CMD"))).toEqual(["engine", "-f", "conf/connmix.yaml"]);
    expect(finalStage.from).toMatch(/^debian:[a-z]+-slim$/);
  });
});

describe("docs/deployment.md", () => {
  test("shows the deploy/ files it names exactly as they are", () => {
    const doc = readFileSync(join(ROOT, "docs/deployment.md"), "utf8");
    // A block introduced by a line naming a file: "`deploy/nginx/connmix.conf`:" then a fenced block.
    const blocks = [...doc.matchAll(/^`(deploy\/[^`]+)`:\n\n```[a-z]*\n([\s\S]*?)```$/gm)];
    expect(blocks.map((b) => b[1]).sort()).toEqual(["deploy/nginx/connmix-proxy.conf", "deploy/nginx/connmix-ssl.conf", "deploy/nginx/connmix.conf", "deploy/systemd/connmix@.service"]);
    for (const [, file, body] of blocks) expect(body).toBe(readFileSync(join(ROOT, file!), "utf8"));
  });
});
