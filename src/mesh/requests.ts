// Requests over PeerLinks: SEND, CALL and QUEUE to one link, PUBLISH to many, each resolved by its reply.
// Shared by the mesh (links to other nodes) and an engine's workers (links between a primary and its
// workers), so both speak the same protocol with the same back-pressure, limits and timeouts.
import type { SendType } from "../engine/host";
import { FrameWriter, MAX_FRAME } from "../net/frames";
import type { Done, PeerLink } from "./link";
import { writeCall, writePublish, writeQueuePush, writeSend } from "./protocol";

let lastReq = 0;

/** Request ids come from one counter per process, so one publish frame serves every link it goes to. */
function nextReq(): number {
  lastReq = (lastReq + 1) >>> 0 || 1;
  return lastReq;
}

/** Waits for the reply to request `req`, just written to `link.out`; a frame over the limit is dropped unsent. */
function reply(link: PeerLink, req: number): Promise<string | null> {
  if (link.out.frameSize() > MAX_FRAME) {
    link.out.cancel();
    return Promise.resolve(link.fail("message too large for the mesh"));
  }
  return new Promise((resolve) => link.track(req, (err) => resolve(err)));
}

/** SEND over `link`: null on success, else the error text. No link: no node (or worker) holds the id. */
export function sendOver(link: PeerLink | undefined, id: number, data: Uint8Array | string, type: SendType): Promise<string | null> {
  if (!link) return Promise.resolve("client not found");
  const busy = link.ready();
  if (busy) return Promise.resolve(link.fail(busy));
  const req = nextReq();
  writeSend(link.out, req, id, data, type);
  return reply(link, req);
}

/** CALL (conn.call) over `link`, answered like a SEND. */
export function callOver(link: PeerLink | undefined, id: number, method: string, args: unknown[]): Promise<string | null> {
  if (!link) return Promise.resolve("client not found");
  const busy = link.ready();
  if (busy) return Promise.resolve(link.fail(busy));
  const req = nextReq();
  writeCall(link.out, req, id, method, args);
  return reply(link, req);
}

/** QUEUE over `link` (a worker hands a queue item to its primary): [items waiting, null] or [0, error]. */
export function queueOver(link: PeerLink, topic: string, json: string, clientId: number): Promise<[number, string | null]> {
  const busy = link.ready();
  if (busy) return Promise.resolve([0, link.fail(busy)]);
  const req = nextReq();
  try {
    writeQueuePush(link.out, req, topic, json, clientId);
  } catch (e) {
    link.out.cancel();
    return Promise.resolve([0, link.fail(`queue topic: ${(e as Error).message}`)]);
  }
  if (link.out.frameSize() > MAX_FRAME) {
    link.out.cancel();
    return Promise.resolve([0, link.fail("message too large for the mesh")]);
  }
  return new Promise((resolve) => link.track(req, (err, waiting) => resolve([waiting, err])));
}

const scratch = new FrameWriter();

/** A publish no link can carry: one failure each. */
function unsent(links: readonly PeerLink[]): Promise<[number, number]> {
  for (const link of links) link.fail("");
  return Promise.resolve([0, links.length]);
}

/** PUBLISH to every link, one frame built once: [delivered, failed]; a link that cannot answer is one failure. */
export function publishTo(links: readonly PeerLink[], channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
  if (links.length === 0) return Promise.resolve([0, 0]);
  const req = nextReq();
  scratch.reset();
  try {
    writePublish(scratch, req, channel, data, type);
  } catch {
    return unsent(links); // a channel name over 65535 bytes
  }
  if (scratch.frameSize() > MAX_FRAME) return unsent(links);
  const frame = scratch.frame();
  return new Promise((resolve) => {
    let ok = 0;
    let fail = 0;
    let left = links.length;
    const done: Done = (err, o, f) => {
      if (err === null) (ok += o), (fail += f);
      else fail++;
      if (--left === 0) resolve([ok, fail]);
    };
    for (const link of links) {
      if (link.ready() !== null) {
        done(link.fail("unreachable"), 0, 0);
        continue;
      }
      link.out.append(frame);
      link.track(req, done);
    }
  });
}
