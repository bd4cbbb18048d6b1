// Length-prefixed frames over TCP, shared by every cluster link (src/net): the mesh (binary frames), the registry
// (JSON frames) and the worker links. Before authentication a reader takes frames of a few hundred bytes only.
//   u32 big-endian length | `length` bytes
// FrameReader splits the byte stream; FrameWriter builds frames in place; Outbox writes them to a socket
// with bounded buffering (back-pressure: past `maxBytes` of unsent data, new frames are refused).
import type { Socket } from "bun";

/** Largest frame either side accepts; a longer length prefix is a protocol error that closes the link. */
export const MAX_FRAME = 16 << 20;
/** Longest text with a length of its own (`shortText`): node ids, channel names. */
export const MAX_SHORT_TEXT = 0xffff;

export class FrameReader {
  private partial = new Uint8Array(0);
  private partialLen = 0;
  private stopped = false;

  constructor(private readonly onFrame: (frame: Uint8Array) => void, private max = MAX_FRAME) {}

  /** Changes the largest frame taken from here on (a link raises it once the peer authenticated). */
  limit(max: number): void {
    this.max = max;
  }

  /** Feeds received bytes; frames are views that are valid only during onFrame. Returns an error text on bad framing. */
  push(chunk: Uint8Array): string | null {
    let data = chunk;
    if (this.partialLen > 0) {
      this.grow(this.partialLen + chunk.length);
      this.partial.set(chunk, this.partialLen);
      data = this.partial.subarray(0, this.partialLen + chunk.length);
    }
    let pos = 0;
    while (data.length - pos >= 4 && !this.stopped) {
      const len = ((data[pos]! << 24) | (data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!) >>> 0;
      if (len > this.max) return `frame of ${len} bytes exceeds the limit of ${this.max}`;
      if (data.length - pos - 4 < len) break;
      this.onFrame(data.subarray(pos + 4, pos + 4 + len));
      pos += 4 + len;
    }
    const rest = data.length - pos;
    if (rest > 0 && data === chunk) {
      this.grow(rest);
      this.partial.set(chunk.subarray(pos), 0);
    } else if (rest > 0 && pos > 0) {
      this.partial.copyWithin(0, pos, pos + rest);
    }
    this.partialLen = rest;
    // A buffer grown for one large frame is given back once it is empty, as Outbox does.
    if (rest === 0 && this.partial.length > 1 << 20) this.partial = new Uint8Array(0);
    return null;
  }

  /** Ignores the rest of the stream (the link is closing). */
  stop(): void {
    this.stopped = true;
  }

  private grow(n: number): void {
    if (this.partial.length >= n) return;
    const next = new Uint8Array(Math.max(n, this.partial.length * 2, 4096));
    next.set(this.partial.subarray(0, this.partialLen));
    this.partial = next;
  }
}

const encoder = new TextEncoder();

/** Builds frames in a growable buffer: begin(), field writers, end() patches the length. */
export class FrameWriter {
  buf = new Uint8Array(64 * 1024);
  view = new DataView(this.buf.buffer);
  len = 0;
  private start = 0;

  reset(): void {
    this.len = 0;
  }
  begin(): void {
    this.start = this.len;
    this.ensure(4);
    this.len += 4;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.len, v);
    this.len += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** UTF-8 text with no length of its own (it runs to the end of the frame, or a length was written before). */
  text(s: string): void {
    this.ensure(s.length * 3);
    this.len += encoder.encodeInto(s, this.buf.subarray(this.len)).written;
  }
  /** A u16 byte length, then the UTF-8 text; a text over 65535 bytes throws (a truncated length would misframe it). */
  shortText(s: string): void {
    const at = this.len;
    this.u16(0);
    this.text(s);
    const n = this.len - at - 2;
    if (n > MAX_SHORT_TEXT) {
      this.len = at;
      throw new RangeError(`${n} bytes is too long for the mesh (at most ${MAX_SHORT_TEXT})`);
    }
    this.view.setUint16(at, n);
  }
  end(): void {
    this.view.setUint32(this.start, this.len - this.start - 4);
  }
  /** Bytes of the frame begun last, after its length prefix. */
  frameSize(): number {
    return this.len - this.start - 4;
  }
  /** Drops the frame begun last (when it turned out too large, for instance). */
  cancel(): void {
    this.len = this.start;
  }
  /** The bytes of the frame begun last, length prefix included. */
  frame(): Uint8Array {
    return this.buf.subarray(this.start, this.len);
  }
  protected ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/**
 * Frames queued for one socket. Frames queued while handling one event (an incoming chunk, an API request)
 * go out in one write, when its microtasks run; what the kernel does not take waits for `drain`. Unsent bytes above `maxBytes` make `full` true: callers refuse
 * new requests instead of buffering without bound.
 */
export class Outbox extends FrameWriter {
  private flushing = false;
  private waitingDrain = false;
  private readonly flushLater = () => this.flush();

  constructor(private socket: Socket<any> | null, private readonly maxBytes: number) {
    super();
  }

  get full(): boolean {
    return this.len > this.maxBytes;
  }

  /** Queues a frame already built elsewhere (one publish frame goes to many peers). */
  append(frame: Uint8Array): void {
    this.bytes(frame);
    this.schedule();
  }

  /** Writes what was queued once the current event's microtasks run (or on drain). */
  schedule(): void {
    if (this.flushing || this.waitingDrain) return;
    this.flushing = true;
    queueMicrotask(this.flushLater);
  }

  flush(): void {
    this.flushing = false;
    const socket = this.socket;
    if (!socket || this.len === 0) return;
    const n = socket.write(this.buf.subarray(0, this.len));
    const written = n > 0 ? n : 0;
    if (written < this.len) {
      this.buf.copyWithin(0, written, this.len);
      this.waitingDrain = true;
    } else {
      this.waitingDrain = false;
    }
    this.len -= written;
    // A large buffer left over from a burst is given back once it is empty.
    if (this.len === 0 && this.buf.length > 1 << 20) {
      this.buf = new Uint8Array(64 * 1024);
      this.view = new DataView(this.buf.buffer);
    }
  }

  drain(): void {
    this.waitingDrain = false;
    this.flush();
  }

  detach(): void {
    this.socket = null;
    this.len = 0;
  }
}
