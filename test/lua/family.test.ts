// A family's declaration is what its chunk gets (src/lua/family.ts): its own JS functions, its constants, the
// exports of the families it uses (installed first, whatever the list order), and the hooks it must return.
import { describe, expect, test } from "bun:test";
import { hook, type LuaFamily } from "../../src/lua/family";
import { jsonFunctions } from "../../native/json";
import { makeVM, testFamily } from "../helpers/lua";

const GREET = hook<[name: string]>("greet");

const base: LuaFamily = {
  name: "base",
  lua: `local F = ...
    shown = { own = F.host.own ~= nil, test_record = F.host.record ~= nil, n = F.N }
    return { value = "from base" }`,
  functions: { own: () => 0 },
  constants: { N: 42 },
};
const user: LuaFamily = {
  name: "user",
  uses: ["base"],
  hooks: [GREET],
  lua: `local F = ...
    local value = F.base.value
    return nil, { greet = function(name) return name .. " " .. value end }`,
};

describe("family declarations", () => {
  test("a family's chunk sees its own functions and constants and the exports of the families it uses, listed before or after it", () => {
    const vm = makeVM(`function shown_fields() return shown end`, { families: [user, base, testFamily] });
    expect(vm.callGlobal("shown_fields", [])).toEqual({ own: true, test_record: false, n: 42 });
    expect(vm.call(GREET, "hello")).toBe("hello from base");
    vm.close();
  });

  test("a family's native (C) functions are in its chunk's F.host beside its JS ones; one name cannot be both", () => {
    const withNative: LuaFamily = {
      ...base,
      lua: `local F = ...
        shown = { encoded = F.host.encode({ 1, "a" }), own = F.host.own ~= nil, kind = debug.getinfo(F.host.encode).what }`,
      native: { encode: jsonFunctions.json_encode },
    };
    const vm = makeVM(`function shown_fields() return shown end`, { families: [withNative] });
    expect(vm.callGlobal("shown_fields", [])).toEqual({ encoded: '[1,"a"]', own: true, kind: "C" });
    vm.close();
    expect(() => makeVM("", { families: [{ ...withNative, native: { own: jsonFunctions.json_encode } }] }))
      .toThrow("Lua family base: host.own is both a JS and a native function");
  });

  test("a hook stays the family's when the script assigns a global of its name", () => {
    const vm = makeVM(`greet = function() return "the script's" end`, { families: [base, user] });
    expect(vm.call(GREET, "hi")).toBe("hi from base");
    vm.close();
  });

  test("a family that uses one not installed, a cycle, a missing hook, a name given twice or another's op without using it is refused when the VM is made", () => {
    expect(() => makeVM("", { families: [user] })).toThrow("Lua family user uses base, which is not installed");
    const a: LuaFamily = { name: "a", uses: ["b"], lua: "" };
    const b: LuaFamily = { name: "b", uses: ["a"], lua: "" };
    expect(() => makeVM("", { families: [a, b] })).toThrow("cycle");
    expect(() => makeVM("", { families: [base, { ...user, lua: "return nil, {}" }] })).toThrow("Lua family user did not return its hook greet");
    expect(() => makeVM("", { families: [{ ...base, constants: { mix: 1 } }] })).toThrow("base: mix names two things");
    const op = { "base.wait": async () => [] };
    expect(() => makeVM("", { families: [{ ...base, blocking: op }, { name: "other", blocking: op }] })).toThrow("Lua families base and other both define the blocking op base.wait");
    expect(() => makeVM("", { families: [{ ...base, blocking: op }, { name: "other", uses: ["base"], blocking: op }] })).not.toThrow();
  });
});
