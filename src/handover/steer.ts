// Closing a listener resets the connections waiting in its accept queue (handshake done, not yet accepted).
// During a handover two processes listen on each port (SO_REUSEPORT) and the kernel spreads new connections
// over both, so the old process's queue is rarely empty when it closes. Before closing, it therefore attaches
// a classic BPF program to the port's reuseport group that hands every new connection to the group's second
// socket, the successor's (a group keeps its sockets in the order they joined; when the first one leaves,
// the second takes its place and the program's index is past the end, so the kernel falls back to its hash
// over what remains). Then it waits a moment for its queue to empty, and closes. Only for groups of exactly
// two sockets: with -p N the Lua ports hold 2N, in no order this process knows; there, and where attaching
// fails, Linux's net.ipv4.tcp_migrate_req=1 moves the queue to another listener instead (docs/deployment.md).
import { dlopen, ptr, type Pointer } from "bun:ffi";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { log } from "../log/logger";

const SOL_SOCKET = 1;
const SO_ATTACH_REUSEPORT_CBPF = 51;
/** BPF_RET | BPF_K: return the constant. */
const BPF_RET_K = 0x06;
/** Linux (5.14+): 1 moves a closing listener's accept queue to another listener of its reuseport group. */
const MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req";
/** How long the old listener stays open after steering, for its queue to be accepted. */
export const STEER_MS = 100;

type SetSockOpt = (fd: number, level: number, name: number, value: Pointer, len: number) => number;
let setsockopt: SetSockOpt | null = null;

/** Inodes of the sockets listening on `port` (any address), from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): string[] {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(hexPort) && f[3] === "0A") out.push(f[9]!);
    }
  }
  return out;
}

/** This process's descriptor of one of these sockets, or null. */
function ownListener(inodes: string[]): number | null {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`));
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (wanted.has(readlinkSync(`/proc/self/fd/${fd}`))) return Number(fd);
    } catch {
      // closed meanwhile
    }
  }
  return null;
}

/**
 * Sends the new connections of `port` to the successor's listener. True when it did; false when the group is
 * not two sockets or the kernel refused (logged at debug).
 */
export function steerToSuccessor(port: number): boolean {
  const inodes = listeningInodes(port);
  if (inodes.length !== 2) return false;
  const own = ownListener(inodes);
  if (own === null) return false;
  setsockopt ??= dlopen("libc.so.6", { setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" } } as const).symbols.setsockopt;
  const filter = Buffer.alloc(8); // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k }
  filter.writeUInt16LE(BPF_RET_K, 0);
  filter.writeUInt32LE(1, 4);
  const prog = Buffer.alloc(16); // struct sock_fprog { u16 len; (pad) struct sock_filter *filter }
  prog.writeUInt16LE(1, 0);
  prog.writeBigUInt64LE(BigInt(ptr(filter)), 8);
  const r = setsockopt(own, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, ptr(prog), prog.length);
  if (r !== 0) log.debug(`port ${port}: cannot steer new connections to the successor (setsockopt failed)`);
  return r === 0;
}

/**
 * Warns when the kernel will reset the connections still queued in a listener this process closes: measured
 * with bench/handover.ts (8 connect loops), reloads reset up to 22 connections with the switch off and none
 * with it on, steering or not.
 */
export function warnUnlessQueuesMigrate(): void {
  let value: string;
  try {
    value = readFileSync(MIGRATE_REQ, "utf8").trim();
  } catch {
    value = "absent (Linux before 5.14)";
  }
  if (value === "1") return;
  log.warn(
    `net.ipv4.tcp_migrate_req is ${value}: connections still waiting in a listener's accept queue when it closes ` +
      "may be reset during this handover; `sysctl -w net.ipv4.tcp_migrate_req=1` hands them to the successor (docs/deployment.md)",
  );
}
