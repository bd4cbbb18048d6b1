// The failed-login table on its own, with an injected clock: the window, and the bound on tracked IPs.
import { expect, test } from "bun:test";
import { LoginLimit } from "../../src/access/login-limit.ts";
import { captureLog } from "../helpers/log.ts";

test("an IP is locked after maxFailures within the window, and free again when the window ends", () => {
  captureLog();
  const limit = new LoginLimit({ maxFailures: 3, windowMs: 10_000 });
  for (const t of [0, 1000, 2000]) {
    expect(limit.lockedFor("10.0.0.1", t)).toBe(0);
    limit.failed("10.0.0.1", "u", t);
  }
  expect(limit.lockedFor("10.0.0.1", 2000)).toBe(8);
  expect(limit.lockedFor("10.0.0.2", 2000)).toBe(0);
  expect(limit.lockedFor("10.0.0.1", 9999)).toBe(1);
  expect(limit.lockedFor("10.0.0.1", 10_000)).toBe(0);
  // Failures spread over more than a window never lock.
  for (const t of [20_000, 25_000, 31_000, 36_000]) limit.failed("10.0.0.3", "u", t);
  expect(limit.lockedFor("10.0.0.3", 36_000)).toBe(0);
});

test("the table holds at most maxTracked IPs: expired entries go first, then the oldest", () => {
  captureLog();
  const limit = new LoginLimit({ maxFailures: 2, windowMs: 1000, maxTracked: 100 });
  for (let i = 0; i < 100; i++) limit.failed(`10.0.0.${i}`, null, 0);
  for (let i = 0; i < 100; i++) limit.failed(`10.1.0.${i}`, null, 500);
  expect(limit.size).toBe(100); // the first hundred were forgotten, oldest first
  for (let i = 0; i < 50; i++) limit.failed(`10.2.0.${i}`, null, 1200);
  expect(limit.size).toBe(100);
  limit.failed("10.1.0.99", null, 1200);
  expect(limit.lockedFor("10.1.0.99", 1200)).toBe(1); // still tracked: its two failures lock it
});
