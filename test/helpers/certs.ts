// Real certificates for TLS tests, made with openssl: a CA and a node certificate it signed, and a rogue
// certificate signed by another CA (what an outsider would present).
import { join } from "node:path";
import { tempDir } from "./files.ts";

export interface Certs {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** Signed by another CA. */
  rogueCert: string;
  rogueKey: string;
  /** Signs a fresh node certificate with the same CA into `cert`/`key` (a renewal). */
  renew(): void;
}

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function signed(dir: string, ca: string, name: string, cn: string): void {
  openssl(["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "2", "-out", `${name}.pem`], dir);
}

export function makeCerts(): Certs {
  const dir = tempDir("certs");
  for (const ca of ["ca", "rogue-ca"]) openssl(["req", "-x509", ...EC, "-days", "2", "-keyout", `${ca}.key`, "-out", `${ca}.pem`, "-subj", `/CN=${ca}`], dir);
  signed(dir, "ca", "node", "node");
  signed(dir, "rogue-ca", "rogue", "node");
  let n = 0;
  return {
    dir,
    ca: join(dir, "ca.pem"),
    cert: join(dir, "node.pem"),
    key: join(dir, "node.key"),
    rogueCert: join(dir, "rogue.pem"),
    rogueKey: join(dir, "rogue.key"),
    renew: () => signed(dir, "ca", "node", `node-renewed-${++n}`),
  };
}
