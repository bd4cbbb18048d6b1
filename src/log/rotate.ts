// A log file rotated by local day: on a new day `connmix.log` becomes `connmix.log.YYYY-MM-DD`
// (the day its lines were written) and only the newest `maxFiles` rotated files are kept.
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

export function localDay(ms: number): string {
  const d = new Date(ms);
  const mm = String(d.getMonth() + 1).padStart(2, "0");
  const dd = String(d.getDate()).padStart(2, "0");
  return `${d.getFullYear()}-${mm}-${dd}`;
}

export class DailyFile {
  private fd: number;
  private failed = false;

  // `day` is the local day of the lines about to be written.
  constructor(
    readonly path: string,
    private maxFiles: number,
    public day: string,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    // A file left by an earlier day is rotated first so it keeps its own date.
    if (existsSync(path)) {
      const fileDay = localDay(statSync(path).mtimeMs);
      if (fileDay < day) this.moveAside(fileDay);
    }
    this.fd = openSync(path, "a");
  }

  write(data: Uint8Array): void {
    try {
      let off = 0;
      while (off < data.length) off += writeSync(this.fd, data, off);
    } catch (e) {
      this.report(e);
    }
  }

  // Never throws: a logging call must not fail the code that logs.
  rotate(newDay: string): void {
    try {
      this.close();
      this.moveAside(this.day);
    } catch (e) {
      this.report(e);
    }
    this.day = newDay;
    this.failed = false;
    try {
      this.fd = openSync(this.path, "a");
    } catch (e) {
      this.fd = -1;
      this.report(e);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  // Keep serving when the disk is full or the directory vanished; say so once on stderr.
  private report(e: unknown): void {
    if (!this.failed) process.stderr.write(`connmix: log file ${this.path}: ${(e as Error).message}\n`);
    this.failed = true;
  }

  private moveAside(day: string): void {
    const target = `${this.path}.${day}`;
    if (existsSync(target)) {
      // Same day rotated twice (clock stepped back): append rather than overwrite.
      appendFileSync(target, readFileSync(this.path));
      unlinkSync(this.path);
    } else {
      renameSync(this.path, target);
    }
    this.prune();
  }

  private prune(): void {
    if (this.maxFiles <= 0) return;
    const dir = dirname(this.path);
    const prefix = basename(this.path) + ".";
    const rotated = readdirSync(dir)
      .filter((n) => n.startsWith(prefix) && /^\d{4}-\d{2}-\d{2}$/.test(n.slice(prefix.length)))
      .sort()
      .reverse();
    for (const name of rotated.slice(this.maxFiles)) unlinkSync(join(dir, name));
  }
}
