// mix.json_encode / mix.json_decode in a real Lua state: the mapping decisions of docs/lua-codec.md, bytes
// that must survive unchanged, and bad input, which must always come back as nil, err.
import { describe, test } from "bun:test";
import { codecVM } from "../helpers/codec";

const check = codecVM();

describe("json_decode", () => {
  test("a typical frame", () => check(String.raw`
    local t, err = mix.json_decode('{"op":"send","msg":"hello world","room_id":1002}')
    eq(err, nil)
    eq(t, { op = "send", msg = "hello world", room_id = 1002 })
    eq(math.type, nil) -- Lua 5.1: numbers are doubles
    eq(tostring(t.room_id), "1002")
  `));

  test("scalars at the top level; null is nil without an error", () => check(String.raw`
    eq(mix.json_decode("12"), 12)
    eq(mix.json_decode(' "x" '), "x")
    eq(mix.json_decode("true"), true)
    eq(mix.json_decode("false"), false)
    eq(select("#", mix.json_decode("null")), 1)
    eq(mix.json_decode("null"), nil)
  `));

  test("null is left out of objects and is mix.null in arrays, so # and ipairs see every element", () => check(String.raw`
    local t = mix.json_decode('{"a":null,"b":1,"c":[1,null,3,null]}')
    eq(count(t), 2)
    eq(t.a, nil)
    eq(#t.c, 4)
    eq(t.c[2], mix.null)
    local seen = 0
    for i, v in ipairs(t.c) do seen = i end
    eq(seen, 4)
    eq(type(mix.null), "userdata")
    eq(mix.json_encode(t.c), "[1,null,3,null]")
  `));

  test("an object whose members are all null stays an object; a null member removes an earlier duplicate", () => check(String.raw`
    eq(mix.json_encode(mix.json_decode('{"a":{"b":null},"c":[{"d":null}]}')), '{"a":{},"c":[{}]}')
    local t = mix.json_decode('{"a":1,"b":2,"a":null}')
    eq(t.a, nil)
    eq(t.b, 2)
    eq(count(t), 1)
    eq(mix.json_encode(mix.json_decode('{"a":1,"a":null}')), "{}")
    eq(mix.json_decode('{"a":null,"a":2}').a, 2)
  `));

  test("objects and arrays; keys are always strings; the last duplicate key wins", () => check(String.raw`
    local t = mix.json_decode('{"1":"a","list":[{"x":[]}],"k":1,"k":2}')
    eq(t["1"], "a")
    eq(t[1], nil)
    eq(t.list[1].x, {})
    eq(t.k, 2)
    eq(mix.json_decode('[[1,2],[3]]'), { { 1, 2 }, { 3 } })
  `));

  test("empty object and array keep their kind through a round trip", () => check(String.raw`
    eq(mix.json_encode(mix.json_decode("{}")), "{}")
    eq(mix.json_encode(mix.json_decode("[]")), "[]")
    eq(mix.json_encode(mix.json_decode('{"a":{},"b":[]}').a), "{}")
  `));

  test("numbers: integers, fractions, exponents, large values", () => check(String.raw`
    eq(mix.json_decode("-0.5"), -0.5)
    eq(mix.json_decode("1.25e2"), 125)
    eq(mix.json_decode("1E-2"), 0.01)
    eq(mix.json_decode("0.1") + mix.json_decode("0.2"), 0.1 + 0.2)
    eq(mix.json_decode("123456789012345678"), 123456789012345678)
    eq(mix.json_decode("9007199254740993"), 9007199254740992) -- beyond 2^53: the nearest double
    eq(mix.json_decode("1.7976931348623157e308"), 1.7976931348623157e308)
    local v, err = mix.json_decode("1e400")
    fails(v, err, "out of range")
  `));

  test("string escapes, UTF-8 and surrogate pairs", () => check(String.raw`
    eq(mix.json_decode([["a\"b\\c\/d\b\f\n\r\t"]]), "a\"b\\c/d\b\f\n\r\t")
    eq(hex(mix.json_decode([["\u00e9\u4f60"]])), "c3a9e4bda0")
    eq(hex(mix.json_decode([["\ud83d\ude00"]])), "f09f9880")
    eq(hex(mix.json_decode([["\ud800x"]])), "efbfbd78") -- a lone surrogate is U+FFFD
    eq(hex(mix.json_decode([["\u0000"]])), "00")
    eq(mix.json_decode([[{"k\ney":1}]])["k\ney"], 1)
  `));

  test("raw bytes inside strings come back unchanged, invalid UTF-8 included", () => check(String.raw`
    local s = "\255\254\128 ok \192\175"
    eq(mix.json_decode('"' .. s .. '"'), s)
    eq(mix.json_decode('{"' .. s .. '":"' .. s .. '"}')[s], s)
  `));

  test("bad input is nil, err and never a Lua error", () => check(String.raw`
    local bad = { "", " ", "{", "[", "[1,]", '{"a":1,}', "{a:1}", "{'a':1}", '{"a" 1}', '{"a"}', "[1 2]",
      "01", "-", "+1", ".5", "1.", "1e", "1e+", "--1", "NaN", "Infinity", "tru", "nul", "nulls", '"abc',
      '"\\x"', '"\\u12"', '"\\u12zz"', '"a\nb"', '"\0"', "[1] x", "/* c */ 1", "\239\187\191{}", "{}}" }
    for _, doc in ipairs(bad) do
      local ok, v, err = pcall(mix.json_decode, doc)
      eq(ok, true, doc)
      fails(v, err, "^json_decode: ")
    end
    for _, arg in ipairs({ 1, true, {} }) do
      local v, err = mix.json_decode(arg)
      fails(v, err, "expects a string")
    end
    local v, err = mix.json_decode()
    fails(v, err, "got no value")
  `));

  test("every truncation of a valid document fails cleanly", () => check(String.raw`
    local doc = '{"a":[1,-2.5e3,"x\\u00e9y",true,false,null,{"b":{}}],"c":"d"}'
    assert(mix.json_decode(doc))
    for i = 1, #doc - 1 do
      local v, err = mix.json_decode(doc:sub(1, i))
      fails(v, err, "json_decode")
    end
  `));

  test("nesting: 1000 levels decode, 1001 is an error", () => check(String.raw`
    local t = assert(mix.json_decode(string.rep("[", 1000) .. string.rep("]", 1000)))
    local depth = 0
    while type(t) == "table" and t[1] do t, depth = t[1], depth + 1 end
    eq(depth, 999)
    local v, err = mix.json_decode(string.rep("[", 1001) .. string.rep("]", 1001))
    fails(v, err, "nested")
    v, err = mix.json_decode(string.rep('{"a":', 5000) .. "1" .. string.rep("}", 5000))
    fails(v, err, "nested")
  `));

  // Tables are created at the size a first pass counted (commas), before the parse validates: a document of
  // commas must not make json_decode allocate more than a valid document of its size would (it was 4x, 40 MB
  // for 1 MB, in the state's memory, so other callbacks could fail for want of it).
  test("a rejected document allocates no more than a valid one of its size", () => check(String.raw`
    local function allocated(doc)
      collectgarbage()
      collectgarbage("stop")
      local before = collectgarbage("count")
      mix.json_decode(doc)
      local kb = collectgarbage("count") - before
      collectgarbage("restart")
      return kb
    end
    local n = 200000
    local valid = allocated("{" .. string.rep('"":0,', n - 1) .. '"":0}')
    local commas = allocated("{" .. string.rep(",", 5 * n))
    if commas > 1.5 * valid then error("object: " .. commas .. " KB for commas, " .. valid .. " KB for a valid one") end
    valid = allocated("[" .. string.rep("0,", n - 1) .. "0]")
    commas = allocated("[" .. string.rep(",", 2 * n))
    if commas > 1.5 * valid then error("array: " .. commas .. " KB for commas, " .. valid .. " KB for a valid one") end
  `));
});

describe("json_encode", () => {
  test("integers print without fraction or exponent; other numbers in the shortest exact form", () => check(String.raw`
    eq(mix.json_encode(1002), "1002")
    eq(mix.json_encode(-5), "-5")
    eq(mix.json_encode(0), "0")
    eq(mix.json_encode(-0), "0")
    eq(mix.json_encode(2^31), "2147483648")
    eq(mix.json_encode(2^53), "9007199254740992")
    eq(mix.json_encode(1e15), "1000000000000000")
    eq(mix.json_encode(2^63), "9223372036854776000")
    eq(mix.json_encode(1e21), "1e+21")
    eq(mix.json_encode(0.1), "0.1")
    eq(mix.json_encode(1/3), "0.3333333333333333")
    eq(mix.json_encode(1.5e-7), "1.5e-7")
    eq(mix.json_decode(mix.json_encode(1/3)), 1/3)
  `));

  test("NaN and infinities are errors", () => check(String.raw`
    for _, v in ipairs({ 0/0, 1/0, -1/0 }) do
      local s, err = mix.json_encode({ x = v })
      fails(s, err, "NaN and infinities")
    end
  `));

  test("arrays, objects, mixed and sparse tables", () => check(String.raw`
    eq(mix.json_encode({ 1, "a", true }), '[1,"a",true]')
    eq(mix.json_encode({ op = "send" }), '{"op":"send"}')
    eq(mix.json_encode({ [1] = 1, [3] = 3 }), "[1,null,3]")        -- a few holes: null
    eq(mix.json_encode({ [10001] = "x" }), '{"10001":"x"}')       -- far apart: an object
    eq(mix.json_encode({ [0] = "z" }), '{"0":"z"}')
    eq(mix.json_encode({ [1.5] = "x" }), '{"1.5":"x"}')
    local mixed = mix.json_decode(mix.json_encode({ 1, 2, x = 3 }))
    eq(mixed, { ["1"] = 1, ["2"] = 2, x = 3 })
    local t = {}
    for i = 10, 1, -1 do t[i] = i end -- built backwards: keys arrive out of order
    eq(mix.json_encode(t), "[1,2,3,4,5,6,7,8,9,10]")
    eq(mix.json_encode({ a = { b = { c = {} } } }), '{"a":{"b":{"c":[]}}}')
  `));

  test("an empty table is []; mix.json_object marks a table as an object", () => check(String.raw`
    eq(mix.json_encode({}), "[]")
    eq(mix.json_encode(mix.json_object()), "{}")
    eq(mix.json_encode(mix.json_object({ "a", "b" })), '{"1":"a","2":"b"}')
    local o = mix.json_object({})
    eq(mix.json_object(o), o)
    local v, err = mix.json_object(1)
    fails(v, err, "expects a table")
  `));

  test("strings: escapes for quotes, backslashes and control bytes, other bytes unchanged", () => check(String.raw`
    eq(mix.json_encode('a"b\\c/d'), [["a\"b\\c/d"]])
    eq(mix.json_encode("\0\1\8\9\10\12\13\31\127"), [["\u0000\u0001\b\t\n\f\r\u001f]] .. "\127" .. '"')
    eq(mix.json_encode("\228\189\160\229\165\189"), '"\228\189\160\229\165\189"')
    local s = "\255\0\254\192\175"
    eq(mix.json_decode(mix.json_encode(s)), s)
    eq(mix.json_decode(mix.json_encode({ [s] = s }))[s], s)
  `));

  test("every byte value round-trips, in keys and values", () => check(String.raw`
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes)
    local t = assert(mix.json_decode(assert(mix.json_encode({ all, [all] = all }))))
    eq(t["1"] == all and t[all] == all, true)
  `));

  test("cycles and too deep nesting are errors", () => check(String.raw`
    local t = {}
    t.self = t
    local s, err = mix.json_encode(t)
    fails(s, err, "cycle")
    local a = {}
    a[1] = a
    s, err = mix.json_encode(a)
    fails(s, err, "cycle")
    local deep = {}
    for i = 1, 999 do deep = { deep } end
    eq(#assert(mix.json_encode(deep)), 2000)
    s, err = mix.json_encode({ deep })
    fails(s, err, "nested more than 1000")
  `));

  test("values JSON has no form for are errors", () => check(String.raw`
    for _, v in ipairs({ print, coroutine.create(print), { f = print }, { [true] = 1 }, { [{}] = 1 } }) do
      local s, err = mix.json_encode(v)
      fails(s, err, "^json_encode: cannot encode")
    end
    eq(mix.json_encode(nil), "null")
    eq(mix.json_encode(mix.null), "null")
  `));

  test("large documents (scratch buffers grow, then shrink)", () => check(String.raw`
    local big = {}
    for i = 1, 50000 do big[i] = { id = i, name = "user " .. i, tags = { "a", "b" } } end
    local s = assert(mix.json_encode(big))
    assert(#s > 2000000)
    local back = assert(mix.json_decode(s))
    eq(#back, 50000)
    eq(back[50000], { id = 50000, name = "user 50000", tags = { "a", "b" } })
    eq(mix.json_encode({ small = true }), '{"small":true}')
  `));

  test("many different strings in a hot loop (no stale bytes from the JIT)", () => check(String.raw`
    local seed = 7
    local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n end
    for i = 1, 30000 do
      local parts = {}
      for j = 1, rnd(12) do parts[j] = string.char(rnd(256)) end
      local s = table.concat(parts)
      local doc = assert(mix.json_encode(mix.json_object({ s, i, [s .. "k"] = i })))
      local t = assert(mix.json_decode(doc))
      if t["1"] ~= s or t["2"] ~= i or t[s .. "k"] ~= i then error("round trip " .. i .. ": " .. hex(s) .. " " .. doc) end
    end
  `));

  // A table that starts like an array but is not one (a hole, a string key after 1..n) is encoded again from its
  // start; were its elements tables already written, every level would double the work (2^depth, in C where the
  // runaway guard cannot stop it). The time per table must not grow with the depth.
  test("nested tables that turn out not to be arrays cost no more per level as they get deeper", () => check(String.raw`
    local function tree(depth, leaf)
      local t = {}
      for i = 1, depth do
        if leaf == "holes" then t = { t, nil, i } else t = { t, tag = "div" } end
      end
      return t
    end
    eq(mix.json_encode(tree(2, "holes")), "[[[],null,1],null,2]")
    eq(mix.json_decode(mix.json_encode(tree(2))), { ["1"] = { ["1"] = {}, tag = "div" }, tag = "div" })
    -- CPU time per encode, repeated for at least 20 ms: the best of three
    local function per_call(t)
      local best = math.huge
      for _ = 1, 3 do
        local n, start = 0, os.clock()
        repeat mix.json_encode(t) n = n + 1 until os.clock() - start >= 0.02
        best = math.min(best, (os.clock() - start) / n)
      end
      return best
    end
    for _, leaf in ipairs({ "holes", "string key" }) do
      local shallow, deep = per_call(tree(10, leaf)), per_call(tree(20, leaf))
      -- twice the tables: about twice the time (it was 2^10 times)
      if deep > 8 * shallow then error(leaf .. ": depth 10 " .. shallow .. " s, depth 20 " .. deep .. " s") end
    end
  `));

  // A collection step inside json_decode or json_encode (any allocation may run one) can run a finalizer that
  // calls them again: each call keeps its state to itself (the JS codec shared its buffers and broke here).
  test("finalizers that call json_encode / json_decode while a call is under way disturb nothing", () => check(String.raw`
    local seen, made = 0, 0
    local big = {}
    for i = 1, 3000 do big[i] = { id = i, name = "user \"" .. i .. "\"\n", tags = { "a", "b" }, score = i / 8 } end
    local doc = assert(mix.json_encode(big))
    for round = 1, 20 do
      for i = 1, 300 do
        local p = newproxy(true)
        made = made + 1
        getmetatable(p).__gc = function()
          seen = seen + 1
          local s = mix.json_encode({ round, "finalizer \"" .. i .. "\"", { x = i } })
          assert(mix.json_decode(s)[3].x == i)
        end
      end
      local t = assert(mix.json_decode(doc))
      for i = 1, #big, 97 do eq(t[i], big[i]) end
      eq(#assert(mix.json_encode(t)), #doc)
    end
    collectgarbage()
    eq(seen, made)
  `));
});
