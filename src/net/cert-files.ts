// The certificate and key files of a TLS listener (`tls: {cert, key}` of a Lua server or an API server),
// read at start and again whenever they change on disk (a stat check every `reloadCheck` seconds, file-watch.ts). A pair
// that does not load, or whose key does not match its certificate (a renewal written halfway), is logged
// and the pair in use stays until a later check finds a good one.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TlsConfig } from "../config/schema";
import { log } from "../log/logger";
import { watchFiles } from "./file-watch";

export interface Pem {
  cert: string;
  key: string;
}

/** Reads and checks the pair; throws an Error that names the file at fault. */
export function readPem(files: Pick<TlsConfig, "cert" | "key">): Pem {
  const read = (file: string) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(code === "ENOENT" ? `file not found: ${file}` : `cannot read ${file} (${code ?? (e as Error).message})`);
    }
    if (!text.includes("-----BEGIN ")) throw new Error(`${file} is not a PEM file`);
    return text;
  };
  const pem = { cert: read(files.cert), key: read(files.key) };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem.cert);
  } catch (e) {
    throw new Error(`${files.cert} holds no certificate (${(e as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(pem.key));
  } catch (e) {
    throw new Error(`${files.key} holds no private key (${(e as Error).message})`);
  }
  if (!matches) throw new Error(`${files.key} is not the key of the certificate in ${files.cert}`);
  return pem;
}

export class CertFiles {
  pem: Pem;
  private readonly unwatch: () => void;
  private readonly listeners = new Set<(pem: Pem) => void>();

  /** `label` names the listener in log lines ("engine API", "lua server 0.0.0.0:6790"). */
  constructor(
    private readonly files: TlsConfig,
    private readonly label: string,
  ) {
    this.pem = readPem(files);
    // A pair that does not load is reported once; the next change of either file is tried again.
    this.unwatch = files.reloadCheck > 0 ? watchFiles([files.cert, files.key], files.reloadCheck * 1000, () => (this.reload(), true)) : () => {};
  }

  /** Calls `fn` with each new pair; returns the way to stop. */
  onChange(fn: (pem: Pem) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  stop(): void {
    this.unwatch();
    this.listeners.clear();
  }

  private reload(): void {
    try {
      this.pem = readPem(this.files);
    } catch (e) {
      return void log.error(`${this.label}: TLS files changed but do not load: ${(e as Error).message}; the certificate in use stays`);
    }
    log.info(`${this.label}: TLS certificate ${this.files.cert} reloaded; new connections get it, open ones keep theirs`);
    for (const fn of this.listeners) {
      try {
        fn(this.pem);
      } catch (e) {
        log.error(`${this.label}: cannot use the new TLS certificate: ${(e as Error).message}; the certificate in use stays`);
      }
    }
  }
}
