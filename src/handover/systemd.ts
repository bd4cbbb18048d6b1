// systemd's readiness protocol (sd_notify), so `Type=notify` units work with reloads: a node says READY=1
// once it serves, and a successor says MAINPID=<its pid> when it takes over, so systemd follows it and does not
// stop the service when the old main process exits after its drain (deploy/systemd, NotifyAccess=all).
// A datagram to the unix socket named by $NOTIFY_SOCKET; bun:ffi calls libc, Bun has no unix datagram sockets.
import { dlopen, ptr } from "bun:ffi";
import { log } from "../log/logger";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const SUN_PATH_MAX = 108;

/** Sends `state` ("READY=1\nMAINPID=123") to $NOTIFY_SOCKET; does nothing when it is not set. */
export function notifySystemd(state: string): void {
  const target = process.env.NOTIFY_SOCKET;
  if (!target) return;
  // "@name" is an abstract socket: its address starts with a NUL byte and has no terminating one.
  const path = Buffer.from(target.startsWith("@") ? `\0${target.slice(1)}` : target);
  if (path.length >= SUN_PATH_MAX) return log.warn(`NOTIFY_SOCKET is too long (${path.length} bytes), systemd not notified`);
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, 2);
  const len = 2 + path.length + (target.startsWith("@") ? 0 : 1);
  const libc = dlopen("libc.so.6", {
    socket: { args: ["i32", "i32", "i32"], returns: "i32" },
    sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
    close: { args: ["i32"], returns: "i32" },
  } as const);
  try {
    const fd = libc.symbols.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return log.warn("cannot open a socket to notify systemd");
    const msg = Buffer.from(state);
    const sent = libc.symbols.sendto(fd, ptr(msg), msg.length, 0, ptr(addr), len);
    libc.symbols.close(fd);
    if (Number(sent) !== msg.length) log.warn(`systemd notification to ${target} failed`);
  } finally {
    libc.close();
  }
}
