// API access control (spec §8, docs/security.md), checked once per HTTP request and once per /ws/v1 upgrade,
// in this order:
// 1. A request that carries an Origin header (a browser's) is refused (403) unless access.origins lists it:
//    a web page must not drive the API through its visitors' browsers.
// 2. No access.users (protected mode): only loopback clients, naming the server by an IP or `localhost` in
//    Host (a DNS-rebinding page names it by its own domain), are served; others get 403.
// 3. Otherwise HTTP Basic credentials of a listed user whose host glob matches the caller's IP. A wrong user,
//    password or host is one answer, 401, so the host rule reveals nothing about the password; failed logins
//    are counted per IP (login-limit.ts) and answered 429 past the limit. `read` allows GET requests, `write`
//    everything else (and the /ws/v1 upgrade); a missing role is 403.
// Shared by the engine and center API servers; the process's HotConfig keeps it in step with the config file.
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { AccessConfig, Role } from "../config/schema";
import type { HotConfig } from "../config/hot";
import { log } from "../log/logger";
import { escapeText } from "../log/escape";
import { isLoopback, plainIp } from "../net/addr";
import { LoginLimit, type LoginLimitOptions } from "./login-limit";

interface User {
  digest: Buffer;
  roles: Set<Role>;
  host: RegExp;
}

export interface AccessOptions {
  /** What log lines and answers call this server: "engine API", "center API". */
  label?: string;
  /**
   * The server serves pages of its own (the center's web console): an Origin naming the very host and port
   * the request was sent to passes rule 1. Rules 2 and 3 still apply (a DNS-rebinding page names the server
   * by its own domain: refused in protected mode, and it has no credentials otherwise).
   */
  sameOrigin?: boolean;
  /** Bounds of the failed-login table (production defaults in login-limit.ts). */
  logins?: LoginLimitOptions;
  /** The process's hot config: each new `access` section applies at once (none: the rules stay). */
  hot?: HotConfig;
}

/** `*` matches any run of characters; everything else literally. */
export function hostPattern(glob: string): RegExp {
  const body = glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`, "i"); // IPv6 hex digits (and origins) in either case
}

/** A Host header naming the server by an IP literal or a `localhost` name, which no DNS rebinding can produce. */
export function hostIsLiteral(host: string | null): boolean {
  if (!host) return true;
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d*$/, "");
  const lower = name.toLowerCase();
  return isIP(name) !== 0 || lower === "localhost" || lower.endsWith(".localhost");
}

const roleFor = (method: string): Role => (method === "GET" || method === "HEAD" ? "read" : "write");
const sha256 = (s: string) => createHash("sha256").update(s).digest();
/** True when `origin` (scheme://host[:port]) names the host and port of the request's Host header. */
function ownOrigin(origin: string, host: string | null): boolean {
  if (host === null) return false;
  try {
    return new URL(origin).host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

/** Compared with the password of an unknown user, so that it takes as long as a known one. */
const NOBODY: User[] = [{ digest: sha256("\u0000nobody"), roles: new Set(), host: /^$/ }];

const text = (status: number, body: string, headers?: Record<string, string>) => new Response(body + "\n", { status, headers });

/** Requests an API server refused since start, by reason (the `reason` label of its refused-requests metric). */
export class RequestRefusals {
  /** 403: an Origin not in access.origins. */
  origin = 0;
  /** 403: protected mode, and not a loopback client naming the server by IP or localhost. */
  protected_mode = 0;
  /** 429: too many failed logins from the address. */
  login_locked = 0;
  /** 401: missing or wrong credentials. */
  unauthorized = 0;
  /** 403: the user lacks the role. */
  role = 0;
  /** 413: a body over the server's limit (counted by the server, which reads the body). */
  too_large = 0;
}

export const REQUEST_REFUSAL_REASONS = Object.keys(new RequestRefusals()) as (keyof RequestRefusals)[];

export class Access {
  private users = new Map<string, User[]>();
  private origins: RegExp[] = [];
  private readonly label: string;
  private readonly sameOrigin: boolean;
  private readonly logins: LoginLimit;
  /** Set after the first update: a later change into protected mode warns again. */
  private loaded = false;
  private readonly unfollow: () => void;
  /** What it refused (and what its server refused as too large). */
  readonly refused = new RequestRefusals();

  constructor(config: AccessConfig, opts: AccessOptions = {}) {
    this.label = opts.label ?? "API";
    this.sameOrigin = opts.sameOrigin ?? false;
    this.logins = new LoginLimit({ label: this.label, ...opts.logins });
    this.update(config);
    this.unfollow = opts.hot?.follow(["access.*"], (next) => this.update(next.access)) ?? (() => {});
  }

  /** Stops following config edits (its server stopped). */
  stop(): void {
    this.unfollow();
  }

  update(config: AccessConfig): void {
    const wasProtected = this.loaded && this.users.size === 0;
    const users = new Map<string, User[]>();
    for (const u of config.users) {
      const list = users.get(u.username) ?? [];
      list.push({ digest: sha256(u.password), roles: new Set(u.roles), host: hostPattern(u.host || "*") });
      users.set(u.username, list);
    }
    this.users = users;
    this.origins = config.origins.map(hostPattern);
    if (users.size === 0 && !wasProtected) {
      log.warn(
        `access.users is empty: the ${this.label} answers loopback clients only (protected mode); ` +
          `list users under access.users to let other hosts in with HTTP Basic credentials`,
      );
    }
    this.loaded = true;
  }

  /** True in protected mode (no access.users): loopback clients only. */
  get protectedMode(): boolean {
    return this.users.size === 0;
  }

  /**
   * Null when `req` from `ip` may go on; otherwise the 403/401/429 response to send, counted in `refused`.
   * `role` defaults to what the request method needs (read for GET/HEAD, write otherwise).
   */
  check(req: Request, ip: string, role: Role = roleFor(req.method)): Response | null {
    const no = this.judge(req, ip, role);
    if (!no) return null;
    this.refused[no[0]]++;
    return no[1];
  }

  /** Whether `req` from `ip` has `role`: a question (the console asks what to show), not a refusal. */
  allows(req: Request, ip: string, role: Role): boolean {
    return this.judge(req, ip, role) === null;
  }

  private judge(req: Request, ip: string, role: Role): [keyof RequestRefusals, Response] | null {
    const origin = req.headers.get("origin");
    if (origin !== null && !this.origins.some((o) => o.test(origin)) && !(this.sameOrigin && ownOrigin(origin, req.headers.get("host")))) {
      return ["origin", text(403, `forbidden: origin ${escapeText(origin)} is not listed in access.origins`)];
    }
    if (this.users.size === 0) {
      if (isLoopback(ip) && hostIsLiteral(req.headers.get("host"))) return null;
      return ["protected_mode", text(403, `forbidden: the ${this.label} answers loopback clients naming it by IP or localhost only, until access.users lists a user`)];
    }
    const wait = this.logins.lockedFor(ip);
    if (wait > 0) return ["login_locked", text(429, "too many failed logins from this address", { "retry-after": String(wait) })];
    const header = req.headers.get("authorization");
    const creds = basicCredentials(header);
    const user = creds ? this.login(creds[0], creds[1], plainIp(ip)) : null;
    if (!user) {
      if (header !== null) this.logins.failed(ip, creds?.[0] ?? null);
      return ["unauthorized", text(401, "unauthorized: missing or wrong username, password or host", { "www-authenticate": 'Basic realm="connmix", charset="UTF-8"' })];
    }
    if (user.some((u) => u.roles.has(role))) return null;
    return ["role", text(403, `forbidden: user ${creds![0]} does not have the ${role} role`)];
  }

  /** The entries of `name` whose password is `password` and whose host glob matches `host`; null if none. */
  private login(name: string, password: string, host: string): User[] | null {
    const given = sha256(password);
    const known = this.users.get(name);
    const matching = (known ?? NOBODY).filter((u) => timingSafeEqual(u.digest, given) && u.host.test(host));
    return known && matching.length ? matching : null;
  }
}

/** [username, password] from an `Authorization: Basic ...` header, or null. */
function basicCredentials(header: string | null): [string, string] | null {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString();
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}
