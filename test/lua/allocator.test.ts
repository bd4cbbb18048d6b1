// runtime.c's allocator keeps small blocks a state freed (16-byte classes up to 256 bytes) for its next
// allocations: what Lua stores must survive blocks moving between classes, and between the classes and larger
// blocks, in both directions, with collections in between; and what the state holds must still be counted.
import { afterAll, expect, test } from "bun:test";
import { cleanupAll } from "../helpers/files.ts";
import { makeVM } from "../helpers/lua";

afterAll(cleanupAll);

// Strings of every length from 1 to 600 bytes (each byte derived from its length and position), tables grown
// element by element past the classes and shrunk again by a collection, kept and dropped in turns; every
// string and table is checked against what it must hold after each round.
const ENTRY = String.raw`
local function make(n, salt)
  local b = {}
  for i = 1, n do b[i] = string.char((n * 7 + i * 13 + salt) % 251) end
  return table.concat(b)
end
local function holds(s, n, salt)
  if #s ~= n then return false end
  for i = 1, n, 17 do
    if s:byte(i) ~= (n * 7 + i * 13 + salt) % 251 then return false end
  end
  return s:byte(n) == (n * 7 + n * 13 + salt) % 251
end

function churn(rounds)
  local kept, bad = {}, 0
  for r = 1, rounds do
    for n = 1, 600 do
      local t = {}
      for i = 1, n % 40 do t[i] = make(i, r) end           -- the array part grows through the classes
      for i = 1, n % 40 do t[i] = nil end
      kept[n] = { s = make(n, r), n = n, t = { make(n % 90 + 1, r + 1) } }
      if n % 3 == 0 then kept[n - 1] = nil end              -- freed while others of its size live
    end
    collectgarbage()
    for n, k in pairs(kept) do
      if not holds(k.s, n, r) or not holds(k.t[1], n % 90 + 1, r + 1) then bad = bad + 1 end
    end
  end
  kept = nil
  collectgarbage()
  return bad
end
`;

test("blocks reused across size classes keep what Lua stored in them, and the state's count returns to its level", () => {
  // No runaway budget: the churn takes about 0.3 s on a quiet machine, several times that on a busy one.
  const vm = makeVM(ENTRY, { memoryLimit: 64 << 20, budgetMs: 0 });
  vm.callGlobal("churn", [1]);
  const before = vm.memoryKiB();
  expect(vm.callGlobal("churn", [4])).toBe(0);
  // Lua's own count (collectgarbage("count")) is back where it was: nothing the cache holds is counted as live.
  expect(Math.abs(vm.memoryKiB() - before)).toBeLessThan(64);
  vm.close();
});
