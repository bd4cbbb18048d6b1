// The listeners of one port across certificate changes. Bun cannot swap the certificate of a running
// Bun.serve or Bun.listen (server.reload ignores `tls`), so a new certificate starts a new listener on the
// same port (every listener binds with SO_REUSEPORT, see src/handover/ports.ts) and the old one stops
// accepting: the kernel hands new connections to the new one while the old one's connections go on with
// the certificate they were opened with. A plain (non-TLS) port has one listener for its whole life.
import type { TlsConfig } from "../config/schema";
import { log } from "../log/logger";
import { CertFiles, type Pem } from "./cert-files";

export interface ListenerOptions<L> {
  /** `tls` of the server's config, or null for a plain listener. */
  tls: TlsConfig | null;
  /** Names the listener in log lines. */
  label: string;
  /** Binds a listener (with these certificate and key when TLS); throws when it cannot. */
  start(pem: Pem | null): L;
  /** Stops a replaced listener from accepting; resolves (if it returns a promise) once its last connection closed. */
  retire(old: L): Promise<unknown> | void;
}

export class Listeners<L> {
  /** Listeners with connections, the newest (the one accepting) last. */
  readonly all: L[];
  private readonly certs: CertFiles | null;

  constructor(private readonly opts: ListenerOptions<L>) {
    this.certs = opts.tls ? new CertFiles(opts.tls, opts.label) : null;
    this.all = [opts.start(this.certs?.pem ?? null)];
    this.certs?.onChange((pem) => this.replace(opts.start(pem)));
    if (opts.tls) log.info(`${opts.label}: TLS with ${opts.tls.cert}${opts.tls.reloadCheck > 0 ? `, checked for a new one every ${opts.tls.reloadCheck}s` : ""}`);
  }

  /** The listener that accepts new connections. */
  get current(): L {
    return this.all[this.all.length - 1]!;
  }

  get tls(): boolean {
    return this.certs !== null;
  }

  private replace(next: L): void {
    const old = this.current;
    this.all.push(next);
    void Promise.resolve(this.opts.retire(old)).then(() => {
      const i = this.all.indexOf(old);
      if (i >= 0) this.all.splice(i, 1);
    });
  }

  /** Stops watching the certificate files (the listeners themselves are the owner's to stop). */
  close(): void {
    this.certs?.stop();
  }
}
