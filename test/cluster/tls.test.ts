// Mutual TLS on cluster links (cluster.tls), with certificates openssl makes for the test: peers signed by
// the cluster's CA link up; a peer with a certificate of another CA, or none, is refused on both sides; a
// renewed certificate is used by new links while links that are up stay up.
import { afterAll, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { Keys } from "../../src/net/auth";
import { TlsMaterial } from "../../src/net/tls";
import type { LinkSecurity } from "../../src/mesh/link";
import { makeCerts } from "../helpers/certs.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { FAST_MESH, MeshNode, SECRET } from "./links.ts";

const logText = captureLog();
const certs = makeCerts();
const NODE = 2 ** 36;
const materials: TlsMaterial[] = [];
afterAll(() => materials.forEach((m) => m.stop()));

function tlsSecurity(files: { cert: string; key: string; ca: string }, reloadMs = 10_000, timings = FAST_MESH): LinkSecurity {
  const tls = new TlsMaterial(files, reloadMs);
  materials.push(tls);
  return { kind: "mesh", keys: new Keys([SECRET]), tls, timings };
}

const meshOn = (sec: LinkSecurity) => new MeshNode(sec);

const good = { cert: certs.cert, key: certs.key, ca: certs.ca };

test("two nodes with certificates of the cluster CA link up and serve requests", async () => {
  const [a, b] = [meshOn(tlsSecurity(good)), meshOn(tlsSecurity(good))];
  try {
    a.update([{ id: b.id, index: 2, ip: "127.0.0.1", meshPort: b.port }], true);
    // The peer answers over TLS: "client not found" comes from its node, not from the link.
    await until(() => logText().includes(`mesh link to node_id ${b.id} (127.0.0.1:${b.port}) up`), 5000);
    expect(await a.sendRemote(2 * NODE + 1, "x", 1)).toBe("client not found");
  } finally {
    a.stop();
    b.stop();
  }
});

test("a node whose certificate another CA signed is refused on both sides, naming the peer", async () => {
  const rogue = meshOn(tlsSecurity({ cert: certs.rogueCert, key: certs.rogueKey, ca: certs.ca }));
  const b = meshOn(tlsSecurity(good));
  try {
    // The rogue dials b: b refuses its certificate.
    rogue.update([{ id: b.id, index: 2, ip: "127.0.0.1", meshPort: b.port }], true);
    await until(() => /mesh point: closing the connection from 127\.0\.0\.1 before authentication: TLS: the peer's certificate is not signed by cluster.tls.ca/.test(logText()), 5000);
    expect(await rogue.sendRemote(2 * NODE + 1, "x", 1)).toStartWith(`node ${b.id} unreachable`);
    // b dials the rogue: b refuses the rogue's certificate as a server.
    b.update([{ id: rogue.id, index: 3, ip: "127.0.0.1", meshPort: rogue.port }], true);
    await until(() => logText().includes(`mesh link to node_id ${rogue.id} (127.0.0.1:${rogue.port}) down: TLS: the peer's certificate is not signed by cluster.tls.ca`), 5000);
  } finally {
    rogue.stop();
    b.stop();
  }
});

test("a node without TLS cannot talk to a TLS mesh point", async () => {
  const b = meshOn(tlsSecurity(good));
  const plain = meshOn({ kind: "mesh", keys: new Keys([SECRET]), tls: null, timings: FAST_MESH });
  try {
    plain.update([{ id: b.id, index: 2, ip: "127.0.0.1", meshPort: b.port }], true);
    await until(() => logText().includes(`mesh link to node_id ${b.id} (127.0.0.1:${b.port}) down`), 5000);
    expect(await plain.sendRemote(2 * NODE + 1, "x", 1)).toStartWith(`node ${b.id} unreachable`);
  } finally {
    plain.stop();
    b.stop();
  }
});

test("a renewed certificate is read again: new links use it, the link that is up stays up", async () => {
  // b's files are copies that the test renews in place.
  const dir = certs.dir;
  const files = { cert: `${dir}/b.pem`, key: `${dir}/b.key`, ca: certs.ca };
  copyFileSync(certs.cert, files.cert);
  copyFileSync(certs.key, files.key);
  // openssl runs in this process while the links are up: silences of a second must not end them.
  const patient = { ...FAST_MESH, silentMs: 5000, inboundIdleMs: 8000, requestMs: 5000 };
  const b = meshOn(tlsSecurity(files, 100, patient));
  const a = meshOn(tlsSecurity(good, 10_000, patient));
  try {
    a.update([{ id: b.id, index: 2, ip: "127.0.0.1", meshPort: b.port }], true);
    await until(() => logText().includes(`mesh link to node_id ${b.id} (127.0.0.1:${b.port}) up`), 5000);
    const before = logText().length;
    certs.renew(); // a new node.pem/node.key signed by the same CA
    copyFileSync(certs.key, files.key);
    copyFileSync(certs.cert, files.cert);
    await until(() => logText().slice(before).includes(`cluster.tls: reloaded ${files.cert}`), 5000);
    // The link made before the renewal still answers, and was never down.
    expect(await a.sendRemote(2 * NODE + 1, "x", 1)).toBe("client not found");
    expect(logText().slice(before)).not.toContain(`mesh link to node_id ${b.id} (127.0.0.1:${b.port}) down`);
    // A new node links up with the renewed certificate.
    const c = meshOn(tlsSecurity(good));
    try {
      c.update([{ id: b.id, index: 2, ip: "127.0.0.1", meshPort: b.port }], true);
      await until(() => logText().slice(before).includes(`mesh link to node_id ${b.id} (127.0.0.1:${b.port}) up`), 5000);
    } finally {
      c.stop();
    }
  } finally {
    a.stop();
    b.stop();
  }
});
