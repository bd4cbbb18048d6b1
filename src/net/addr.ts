// Peer addresses as Bun reports them (IPv4 peers of a dual-stack listener come as ::ffff:a.b.c.d).

/** The peer's IP as users write it: IPv4-mapped IPv6 addresses lose their ::ffff: prefix. */
export const plainIp = (ip: string) => (/^::ffff:/i.test(ip) ? ip.slice(7) : ip);

/** 127.0.0.0/8 or ::1. */
export const isLoopback = (ip: string | undefined) => !!ip && (ip === "::1" || plainIp(ip).startsWith("127."));
