// Real certificates for TLS tests, made with openssl: a test CA and server certificates it signs for
// 127.0.0.1 and localhost. A TLS client (Bun.connect) that collects what it receives, and the name in the
// certificate a port serves to a new connection.
import type { Socket } from "bun";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./files.ts";
import { until } from "./wait.ts";

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const p = Bun.spawn(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`openssl ${args.join(" ")}: ${await new Response(p.stderr).text()}`);
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM text) clients trust. */
  ca: string;
  /** Makes `<name>.crt` and `<name>.key` in dir, signed by the CA, with CN `name`; returns their paths. */
  issue(name: string): Promise<{ cert: string; key: string }>;
}

export async function testCa(): Promise<TestCa> {
  const dir = tempDir("tls");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(dir, "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=connmix test CA");
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  return {
    dir,
    ca: readFileSync(join(dir, "ca.crt"), "utf8"),
    async issue(name) {
      await openssl(dir, "req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
      await openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", `${name}.crt`, "-days", "2", "-extfile", "san.ext");
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    },
  };
}

/** Puts `from`'s pair in place of `to`'s the way a renewal tool does: each file written aside, then renamed. */
export function replacePair(from: { cert: string; key: string }, to: { cert: string; key: string }): void {
  for (const k of ["key", "cert"] as const) {
    writeFileSync(`${to[k]}.new`, readFileSync(from[k]));
    renameSync(`${to[k]}.new`, to[k]);
  }
}

/** A TLS client of 127.0.0.1:port that trusts `ca`, connected once its handshake succeeded. */
export class TlsClient {
  private chunks: Buffer[] = [];
  closed = false;
  private constructor(readonly socket: Socket<undefined>) {}

  static async connect(port: number, ca: string): Promise<TlsClient> {
    let done!: (e: Error | null) => void;
    const handshake = new Promise<Error | null>((r) => (done = r));
    let c: TlsClient | undefined;
    const chunks: Buffer[] = [];
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      tls: { ca },
      socket: {
        handshake: (_s, ok, err) => done(ok ? null : (err ?? new Error("TLS handshake failed"))),
        data: (_s, chunk) => void (c ? c.chunks : chunks).push(Buffer.from(chunk)),
        close: () => {
          if (c) c.closed = true;
          done(new Error("closed before the TLS handshake"));
        },
      },
    });
    const err = await handshake;
    if (err) {
      socket.end();
      throw err;
    }
    c = new TlsClient(socket);
    c.chunks = chunks;
    return c;
  }

  write(data: string): void {
    this.socket.write(data);
    this.socket.flush();
  }

  text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  async waitFor(text: string, ms = 5000): Promise<void> {
    await until(() => this.text().includes(text), ms, `${JSON.stringify(text)} (got ${JSON.stringify(this.text())})`);
  }

  end(): void {
    this.socket.end();
  }
}

/** The CN of the certificate 127.0.0.1:port serves a new connection (not verified: any certificate will do). */
export async function servedName(port: number): Promise<string> {
  let done!: (cn: string) => void;
  const got = new Promise<string>((r) => (done = r));
  const s = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    tls: { rejectUnauthorized: false },
    socket: {
      handshake: (sock) => done(String(sock.getPeerCertificate()?.subject?.CN ?? "")),
      data() {},
      close: () => done(""),
    },
  });
  const cn = await got;
  s.end();
  return cn;
}

/** Waits until new connections to `port` get the certificate named `cn`. */
export async function waitServed(port: number, cn: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  let last = "";
  while ((last = await servedName(port)) !== cn) {
    if (Date.now() > end) throw new Error(`port ${port} still serves ${JSON.stringify(last)}, not ${cn}, after ${ms} ms`);
    await Bun.sleep(50);
  }
}
