// Mutual TLS for the registry and mesh links (cluster.tls): every node holds a certificate signed by the
// cluster's CA and takes peers whose certificate that CA signed. The files are read again when they change
// (checked every `reloadMs`): new links use the new certificate, links already up are kept.
import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { log } from "../log/logger";
import { watchFiles } from "./file-watch";

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

interface Pem {
  cert: string;
  key: string;
  ca: string;
}

/** The PEM texts of cluster.tls, kept current. */
export class TlsMaterial {
  pem: Pem;
  private readonly unwatch: () => void;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly files: TlsFiles, reloadMs = 10_000) {
    this.pem = read(files);
    this.unwatch = watchFiles([files.cert, files.key, files.ca], reloadMs, () => this.reload());
  }

  /** Calls `fn` after each reload; returns the way to stop. */
  onReload(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private reload(): boolean {
    try {
      this.pem = read(this.files);
    } catch (e) {
      // Half-written files (a renewal in progress) are retried at the next check; the old certificate stays.
      log.warn(`cluster.tls: ${(e as Error).message}; keeping the certificate in use`);
      return false;
    }
    log.info(`cluster.tls: reloaded ${this.files.cert}; new links use it, links already up are kept`);
    for (const fn of this.listeners) fn();
    return true;
  }

  /** Options for Bun.listen / Bun.connect: our certificate, and the CA a peer's must chain to. */
  options(): Pem & { requestCert: boolean; rejectUnauthorized: boolean } {
    // Verification happens in verifyPeer, so a refusal is logged with the peer's address and the reason.
    return { ...this.pem, requestCert: true, rejectUnauthorized: false };
  }

  stop(): void {
    this.unwatch();
    this.listeners.clear();
  }
}

function read(files: TlsFiles): Pem {
  const text = (what: keyof TlsFiles) => {
    const text = readFileSync(files[what], "utf8");
    if (!text.includes("-----BEGIN ")) throw new Error(`${files[what]} is not a PEM file`);
    return text;
  };
  return { cert: text("cert"), key: text("key"), ca: text("ca") };
}

/**
 * Null when the peer's certificate chains to the cluster CA, else why not. Nodes dial each other by IP, so
 * the name in the certificate is not checked: being signed by the cluster's CA is the identity.
 */
export function verifyPeer(s: Socket<unknown>, err: Error | null): string | null {
  if (s.authorized) return null;
  const code = (err as { code?: string } | null)?.code;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return null;
  return `TLS: the peer's certificate is not signed by cluster.tls.ca (${code ?? err?.message ?? "no certificate"})`;
}
