// The cluster section: the shared secret of the registry and mesh links and their optional mutual TLS
// (docs/security.md).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Reader } from "./load.ts";
import type { ClusterConfig, ClusterTlsConfig } from "./schema.ts";

/** Shortest secret taken: a short one could be guessed offline from one recorded handshake. */
export const MIN_SECRET = 16;

export function readCluster(r: Reader, v: unknown): ClusterConfig {
  const m = r.map(v, "cluster", ["secret", "secretFile", "tls"]);
  const raw = m.secret;
  const list = raw === null || raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const secretFile = r.str(m, "secretFile", "cluster", "");
  if (secretFile && list.length) r.fail("cluster.secretFile", "and cluster.secret cannot both be set");
  if (secretFile) {
    const file = resolve(process.cwd(), secretFile);
    r.checkFile(file, "cluster.secretFile");
    const secret = checkSecrets(readSecretFile(file), (i) => `cluster.secretFile (${file}, line ${i + 1})`, r);
    if (!secret.length) r.fail("cluster.secretFile", `holds no secret: ${file}`);
    return { secret, secretFile: file, tls: tls(r, m.tls) };
  }
  const secret = checkSecrets(list, (i) => (Array.isArray(raw) ? `cluster.secret[${i}]` : "cluster.secret"), r);
  return { secret, secretFile: "", tls: tls(r, m.tls) };
}

/** The secrets of a secret file: one per line, the first one proves; blank lines are skipped. */
export function readSecretFile(file: string): string[] {
  return readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

/** The secrets, or a failure naming the one that is not a string or too short. */
export function checkSecrets(list: unknown[], path: (i: number) => string, r: Pick<Reader, "fail">): string[] {
  return list.map((s, i) => {
    if (typeof s !== "string") return r.fail(path(i), "must be a string (or a list of strings)");
    if (s.length < MIN_SECRET) return r.fail(path(i), `must be at least ${MIN_SECRET} characters (generate one with: openssl rand -base64 32)`);
    return s;
  });
}

function tls(r: Reader, v: unknown): ClusterTlsConfig | null {
  const m = r.map(v, "cluster.tls", ["cert", "key", "ca"]);
  const given = (["cert", "key", "ca"] as const).filter((k) => r.str(m, k, "cluster.tls", "") !== "");
  if (given.length === 0) return null;
  for (const k of ["cert", "key", "ca"] as const) {
    if (!given.includes(k)) r.fail(`cluster.tls.${k}`, "is required with the other cluster.tls files (cert, key and ca)");
  }
  const files = { cert: "", key: "", ca: "" };
  for (const k of given) {
    files[k] = resolve(process.cwd(), r.str(m, k, "cluster.tls", ""));
    r.checkFile(files[k], `cluster.tls.${k}`);
  }
  return files;
}
