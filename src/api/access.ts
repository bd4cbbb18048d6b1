// API access control (spec §8): HTTP Basic credentials of a listed user whose host glob matches the
// caller's IP; `read` allows GET requests, `write` everything else (and the /ws/v1 upgrade). No users: open.
// Wrong or missing credentials answer 401, a known user without the role or from another host 403.
// Shared by the engine and center API servers; follow() keeps it in step with the config file.
import { timingSafeEqual } from "node:crypto";
import type { AccessConfig, Role } from "../config/schema";
import { onConfigChange } from "../config/watch";

interface User {
  password: Buffer;
  roles: Set<Role>;
  host: RegExp;
}

/** `*` matches any run of characters; everything else literally. */
export function hostPattern(glob: string): RegExp {
  const body = glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`, "i"); // IPv6 hex digits in either case
}

/** The caller's IP as users write it: IPv4-mapped IPv6 addresses lose their ::ffff: prefix. */
export const plainIp = (ip: string) => (ip.startsWith("::ffff:") ? ip.slice(7) : ip);

const roleFor = (method: string): Role => (method === "GET" || method === "HEAD" ? "read" : "write");

export class Access {
  private users = new Map<string, User[]>();

  constructor(config: AccessConfig) {
    this.update(config);
  }

  update(config: AccessConfig): void {
    const users = new Map<string, User[]>();
    for (const u of config.users) {
      const list = users.get(u.username) ?? [];
      list.push({ password: Buffer.from(String(u.password ?? "")), roles: new Set(u.roles), host: hostPattern(u.host || "*") });
      users.set(u.username, list);
    }
    this.users = users;
  }

  /** Applies each new `access` section of the config file at once; returns the unsubscribe function. */
  follow(): () => void {
    return onConfigChange((next) => {
      this.update(next.access);
    });
  }

  get open(): boolean {
    return this.users.size === 0;
  }

  /**
   * Null when `req` from `ip` may go on; otherwise the 401/403 response to send. `role` defaults to what the
   * request method needs (read for GET/HEAD, write otherwise).
   */
  check(req: Request, ip: string, role: Role = roleFor(req.method)): Response | null {
    if (this.users.size === 0) return null;
    const creds = basicCredentials(req.headers.get("authorization"));
    const candidates = creds ? this.users.get(creds[0]) : undefined;
    const given = creds ? Buffer.from(creds[1]) : null;
    const known = candidates?.filter((u) => given && u.password.length === given.length && timingSafeEqual(u.password, given));
    if (!known?.length) {
      return new Response("unauthorized: missing or wrong username/password\n", {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="connmix", charset="UTF-8"' },
      });
    }
    const host = plainIp(ip);
    if (known.some((u) => u.roles.has(role) && u.host.test(host))) return null;
    const why = known.some((u) => u.host.test(host)) ? `the ${role} role` : `access from ${host}`;
    return new Response(`forbidden: user ${creds![0]} does not have ${why}\n`, { status: 403 });
  }
}

/** [username, password] from an `Authorization: Basic ...` header, or null. */
function basicCredentials(header: string | null): [string, string] | null {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!m) return null;
  const text = Buffer.from(m[1]!, "base64").toString();
  const colon = text.indexOf(":");
  return colon < 0 ? null : [text.slice(0, colon), text.slice(colon + 1)];
}
