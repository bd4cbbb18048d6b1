// The mix codec functions in a real Lua state: base64, digests, PHP pack/unpack (vectors from the PHP
// manual), str_split, parse_str (PHP), parse_url (Go net/url test vectors), bytes_tostring.
import { describe, test } from "bun:test";
import { createHash } from "node:crypto";
import { codecVM } from "../helpers/codec";

const check = codecVM();
const ALL_BYTES = `local bytes = {} for i = 0, 255 do bytes[i + 1] = string.char(i) end local all = table.concat(bytes)`;
const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe("base64", () => {
  test("RFC 4648 vectors both ways", () => check(String.raw`
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
      foobar = "Zm9vYmFy" }
    for plain, encoded in pairs(vectors) do
      eq(mix.base64_encode(plain), encoded)
      eq(mix.base64_decode(encoded), plain)
    end
  `));

  test("binary round trip; decode accepts missing padding, URL-safe letters and line breaks", () => check(String.raw`
    ${ALL_BYTES}
    eq(mix.base64_decode(mix.base64_encode(all)), all)
    eq(mix.base64_decode("Zm9vYg"), "foob")
    eq(mix.base64_decode("-_8"), "\251\255")
    eq(mix.base64_decode("Zm9v\r\nYmFy"), "foobar")
    eq(mix.base64_encode(12), "MTI=")
  `));

  test("invalid input is nil, err", () => check(String.raw`
    for _, s in ipairs({ "Zm9v!", "Z", "Zm9vY===", "Zg=", "=Zg", "Zm 9v", "Zg==Zg==" }) do
      local v, err = mix.base64_decode(s)
      fails(v, err, "illegal base64 data")
    end
    local v, err = mix.base64_decode({})
    fails(v, err, "expects a string")
    v, err = mix.base64_encode(nil)
    fails(v, err, "expects a string")
  `));
});

describe("digests", () => {
  test("md5 (RFC 1321) and sha1 (FIPS 180) vectors, lowercase hex", () => check(String.raw`
    eq(mix.md5(""), "d41d8cd98f00b204e9800998ecf8427e")
    eq(mix.md5("abc"), "900150983cd24fb0d6963f7d28e17f72")
    eq(mix.md5("message digest"), "f96b697d7cb7938d525a2f31aaf161d0")
    eq(mix.sha1("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
    eq(mix.sha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
  `));

  test("raw digests are the bytes of the hex ones; binary input is hashed as bytes", () => check(String.raw`
    ${ALL_BYTES}
    eq(mix.md5(all), "${createHash("md5").update(allBytes).digest("hex")}")
    eq(mix.sha1(all), "${createHash("sha1").update(allBytes).digest("hex")}")
    eq(#mix.md5_bin(all), 16)
    eq(#mix.sha1_bin(all), 20)
    eq(hex(mix.md5_bin(all)), mix.md5(all))
    eq(hex(mix.sha1_bin("abc")), mix.sha1("abc"))
    local v, err = mix.sha1_bin(true)
    fails(v, err, "sha1 expects a string")
  `));
});

describe("php_pack", () => {
  test("the manual's example and the integer codes with their byte orders", () => check(String.raw`
    eq(hex(mix.php_pack("nvc*", 0x1234, 0x5678, 65, 66)), "123478564142")
    eq(hex(mix.php_pack("C3", 1, 2, 255)), "0102ff")
    eq(hex(mix.php_pack("sSnv", -2, 0x0102, 0x0102, 0x0102)), "feff020101020201")
    eq(hex(mix.php_pack("iIlL", -1, 1, -2, 2)), "ffffffff01000000feffffff02000000")
    eq(hex(mix.php_pack("NV", 0x01020304, 0x01020304)), "0102030404030201")
    eq(hex(mix.php_pack("qQJP", -1, 1, 1, 1)),
      "ffffffffffffffff" .. "0100000000000000" .. "0000000000000001" .. "0100000000000000")
    eq(hex(mix.php_pack("J", 2^63)), "8000000000000000")
  `));

  test("integers are truncated toward zero and wrapped; numeric strings are numbers", () => check(String.raw`
    eq(hex(mix.php_pack("C", 256)), "00")
    eq(hex(mix.php_pack("c", -1)), "ff")
    eq(hex(mix.php_pack("n", 65537)), "0001")
    eq(hex(mix.php_pack("N", -1)), "ffffffff")
    eq(hex(mix.php_pack("C", 3.9)), "03")
    eq(hex(mix.php_pack("N", "258")), "00000102")
    local v, err = mix.php_pack("N", "abc")
    fails(v, err, "Type N: argument 1 must be a number")
  `));

  test("floats in machine, little and big endian order", () => check(String.raw`
    eq(hex(mix.php_pack("G", 1.5)), "3fc00000")
    eq(hex(mix.php_pack("g", 1.5)), "0000c03f")
    eq(hex(mix.php_pack("f", 1.5)), "0000c03f")
    eq(hex(mix.php_pack("E", 1.5)), "3ff8000000000000")
    eq(hex(mix.php_pack("e", 1.5)), "000000000000f83f")
    eq(hex(mix.php_pack("d", -2)), "00000000000000c0")
  `));

  test("strings: a pads with NUL, A with spaces, Z is always NUL-terminated; h and H are hex", () => check(String.raw`
    eq(mix.php_pack("a4", "ab"), "ab\0\0")
    eq(mix.php_pack("A4", "ab"), "ab  ")
    eq(mix.php_pack("a2", "abcd"), "ab")
    eq(mix.php_pack("Z*", "aa"), "aa\0")
    eq(mix.php_pack("Z2", "aa"), "a\0")
    eq(mix.php_pack("a*", "\0\255x"), "\0\255x")
    eq(mix.php_pack("H*", "48656c6c6f"), "Hello")
    eq(mix.php_pack("h*", "8456c6c6f6"), "Hello")
    eq(hex(mix.php_pack("H*", "abc")), "abc0")
    eq(hex(mix.php_pack("H3", "abcdef")), "abc0")
  `));

  test("x, X and @ move the position; the result ends where the last code left it", () => check(String.raw`
    eq(mix.php_pack("x2"), "\0\0")
    eq(hex(mix.php_pack("NX", 1)), "000000")
    eq(mix.php_pack("a2@4a1", "ab", "c"), "ab\0\0c")
    eq(mix.php_pack("a4@2", "abcd"), "ab")
    eq(mix.php_pack("a3X2a1", "abc", "z"), "az")
  `));

  test("unknown codes and missing arguments are nil, err", () => check(String.raw`
    local v, err = mix.php_pack("y", 1)
    fails(v, err, "Type y: unknown format code")
    v, err = mix.php_pack("N")
    fails(v, err, "Type N: too few arguments")
    v, err = mix.php_pack("a")
    fails(v, err, "Type a: not enough arguments")
    v, err = mix.php_pack("a", {})
    fails(v, err, "must be a string")
    v, err = mix.php_pack(nil)
    fails(v, err, "php_pack expects a string")
    v, err = mix.php_pack("x2000000000")
    fails(v, err, "more than")
  `));
});

describe("php_unpack", () => {
  test("the manual's examples: named keys, repeat counts, unnamed keys restarting at 1", () => check(String.raw`
    eq(mix.php_unpack("cchars/nint", "\4\0\160\0"), { chars = 4, int = 160 })
    eq(mix.php_unpack("c2chars/nint", "\4\0\160\0"), { chars1 = 4, chars2 = 0, int = 40960 })
    eq(mix.php_unpack("c2/n", "\50\66\0\160"), { [1] = 160, [2] = 66 })
    eq(mix.php_unpack("Nlen/a*body", mix.php_pack("Na*", 5, "hello")), { len = 5, body = "hello" })
    eq(mix.php_unpack("C*", "abc"), { 97, 98, 99 })
    eq(mix.php_unpack("C*x", "ab"), { x1 = 97, x2 = 98 })
  `));

  test("signed and unsigned integers; 64-bit values are signed as in PHP", () => check(String.raw`
    eq(mix.php_unpack("c/C", "\255\255"), { [1] = 255 })
    eq(mix.php_unpack("csigned/Cunsigned", "\255\255"), { signed = -1, unsigned = 255 })
    local ff = string.rep("\255", 8)
    eq(mix.php_unpack("sa/Sb/nc/vd", ff), { a = -1, b = 65535, c = 65535, d = 65535 })
    eq(mix.php_unpack("ia/Ib/lc/Ld/Ne/Vf", string.rep("\255", 24)),
      { a = -1, b = 4294967295, c = -1, d = 4294967295, e = 4294967295, f = 4294967295 })
    eq(mix.php_unpack("qa/Qb/Jc/Pd", string.rep(ff, 4)), { a = -1, b = -1, c = -1, d = -1 })
    eq(mix.php_unpack("J", "\0\0\0\0\0\0\1\0"), { 256 })
    eq(mix.php_unpack("P", "\0\1\0\0\0\0\0\0"), { 256 })
    eq(mix.php_unpack("n", "\1\2"), { 258 })
    eq(mix.php_unpack("v", "\1\2"), { 513 })
  `));

  test("floats round-trip through pack", () => check(String.raw`
    eq(mix.php_unpack("Ga/gb/fc", mix.php_pack("Ggf", 1.5, -2.25, 0.5)), { a = 1.5, b = -2.25, c = 0.5 })
    eq(mix.php_unpack("Ea/eb/dc", mix.php_pack("Eed", 0.1, 1e300, -0.0)), { a = 0.1, b = 1e300, c = -0.0 })
  `));

  test("strings: a keeps everything, A strips trailing whitespace and NULs, Z stops at NUL, h/H hex", () => check(String.raw`
    eq(mix.php_unpack("a5", "ab\0\0\0"), { "ab\0\0\0" })
    eq(mix.php_unpack("A*", "ab \t\r\n\0"), { "ab" })
    eq(mix.php_unpack("Z*", "ab\0cd"), { "ab" })
    eq(mix.php_unpack("a2x/a*y", "ab"), { x = "ab", y = "" })
    eq(mix.php_unpack("H*", "Hello"), { "48656c6c6f" })
    eq(mix.php_unpack("h*", "Hello"), { "8456c6c6f6" })
    eq(mix.php_unpack("H3", "\171\205"), { "abc" })
    ${ALL_BYTES}
    eq(mix.php_unpack("a*", all)[1], all)
  `));

  test("x skips, X backs up, @ jumps; an offset starts later", () => check(String.raw`
    eq(mix.php_unpack("Ca/x/Cb", "\1\2\3"), { a = 1, b = 3 })
    eq(mix.php_unpack("Ca/X/Cb", "\1\2"), { a = 1, b = 1 })
    eq(mix.php_unpack("@2/Ca", "\1\2\3"), { a = 3 })
    eq(mix.php_unpack("C", "\1\2", 1), { 2 })
    local v, err = mix.php_unpack("C", "\1", 5)
    fails(v, err, "offset 5 is out of input range")
  `));

  test("short input, unknown codes and bad arguments are nil, err", () => check(String.raw`
    local v, err = mix.php_unpack("N", "ab")
    fails(v, err, "Type N: not enough input, need 4, have 2")
    v, err = mix.php_unpack("a5", "ab")
    fails(v, err, "not enough input")
    v, err = mix.php_unpack("y", "ab")
    fails(v, err, "invalid format type y")
    v, err = mix.php_unpack("C", nil)
    fails(v, err, "expects a string to unpack")
  `));
});

describe("str_split", () => {
  test("plain separators, empty parts kept", () => check(String.raw`
    eq(mix.str_split("a,b,,c", ","), { "a", "b", "", "c" })
    eq(mix.str_split("abc", ","), { "abc" })
    eq(mix.str_split("", ","), { "" })
    eq(mix.str_split(",", ","), { "", "" })
    eq(mix.str_split("a::b::", "::"), { "a", "b", "" })
    eq(mix.str_split("a.b%c", "."), { "a", "b%c" })
    eq(mix.str_split("a\0b", "\0"), { "a", "b" })
    eq(mix.str_split(1020304, 0), { "1", "2", "3", "4" })
  `));

  test("an empty separator splits into UTF-8 characters; invalid bytes stand alone", () => check(String.raw`
    eq(mix.str_split("", ""), {})
    eq(mix.str_split("h\228\189\160i\240\159\152\128", ""), { "h", "\228\189\160", "i", "\240\159\152\128" })
    eq(mix.str_split("\255\228\189x\192\175", ""), { "\255", "\228", "\189", "x", "\192", "\175" })
    eq(mix.str_split("\237\160\128", ""), { "\237", "\160", "\128" }) -- a UTF-16 surrogate is not UTF-8
  `));

  test("bad arguments are nil, err", () => check(String.raw`
    local v, err = mix.str_split(nil, ",")
    fails(v, err, "str_split expects a string")
    v, err = mix.str_split("a", {})
    fails(v, err, "expects a separator string")
  `));
});

describe("parse_str", () => {
  test("the manual's examples: arrays, + and %-decoding, name mangling", () => check(String.raw`
    eq(mix.parse_str("first=value&arr[]=foo+bar&arr[]=baz"), { first = "value", arr = { "foo bar", "baz" } })
    eq(mix.parse_str("My Value=Something"), { My_Value = "Something" })
    eq(mix.parse_str("a.b=1&c d=2&%20e=3"), { a_b = "1", c_d = "2", e = "3" })
  `));

  test("nested keys, appends after the largest integer key, integer-looking keys are numbers", () => check(String.raw`
    eq(mix.parse_str("a[b]=c&a[d][e]=f"), { a = { b = "c", d = { e = "f" } } })
    eq(mix.parse_str("a[1]=x&a[]=y"), { a = { "x", "y" } })
    eq(mix.parse_str("a[0]=x&a[]=y&a[]=z"), { a = { [0] = "x", [1] = "y", [2] = "z" } })
    eq(mix.parse_str("a[][x]=1&a[][x]=2"), { a = { { x = "1" }, { x = "2" } } })
    eq(mix.parse_str("a[ ]=1&a[ b]=2&a[c.d]=3"), { a = { "1", [" b"] = "2", ["c.d"] = "3" } })
    eq(mix.parse_str("1=x&01=y&-5=z"), { [1] = "x", ["01"] = "y", [-5] = "z" })
  `));

  test("unclosed and trailing brackets, overrides, empty names and values", () => check(String.raw`
    eq(mix.parse_str("a[b=1"), { a_b = "1" })
    eq(mix.parse_str("a[b.c d=1"), { a_b_c_d = "1" })
    eq(mix.parse_str("a[b][c=1"), { a = { b = "1" } })
    eq(mix.parse_str("a[b]x=1"), { a = { b = "1" } })
    eq(mix.parse_str("a=1&a[]=2"), { a = { "2" } })
    eq(mix.parse_str("a[]=1&a=2"), { a = "2" })
    eq(mix.parse_str("&&a&b=&=c&[x]=d&&"), { a = "", b = "" })
    eq(mix.parse_str(""), {})
  `));

  test("decoding: bytes kept, bad escapes left alone, a NUL ends a name, 64 levels at most", () => check(String.raw`
    eq(mix.parse_str("v=%00%FF%e4%bd%a0"), { v = "\0\255\228\189\160" })
    eq(mix.parse_str("v=%zz%4&w=%2B+"), { v = "%zz%4", w = "+ " })
    eq(mix.parse_str("a%5Bb%5D=1"), { a = { b = "1" } })
    eq(mix.parse_str("a%00b=1"), { a = "1" })
    eq(mix.parse_str("x=1&a" .. string.rep("[a]", 64) .. "=1").a ~= nil, true)
    eq(mix.parse_str("x=1&a" .. string.rep("[a]", 65) .. "=1"), { x = "1" })
    local v, err = mix.parse_str({})
    fails(v, err, "parse_str expects a string")
  `));
});

describe("parse_url", () => {
  test("exactly the documented fields; the connmix handshake example", () => check(String.raw`
    eq(mix.parse_url("/chat?foo=bar"), { scheme = "", opaque = "", user = "", host = "", path = "/chat",
      raw_path = "", force_query = false, raw_query = "foo=bar", fragment = "", raw_fragment = "",
      query = { foo = "bar" } })
  `));

  test("Go's url_test vectors", () => check(String.raw`
    local function p(u) return assert(mix.parse_url(u)) end
    local u = p("http://www.google.com/file%20one%26two")
    eq({ u.scheme, u.host, u.path, u.raw_path }, { "http", "www.google.com", "/file one&two", "/file%20one%26two" })
    u = p("http://www.google.com/#file%20one%26two")
    eq({ u.path, u.fragment, u.raw_fragment }, { "/", "file one&two", "file%20one%26two" })
    eq(p("http://www.google.com/#frag%20ment").raw_fragment, "")
    eq(p("ftp://webmaster@www.google.com/").user, "webmaster")
    eq(p("ftp://john%20doe@www.google.com/").user, "john%20doe")
    eq(p("http://user:password@google.com").user, "user:password")
    eq(p("http://j@ne:password@google.com").user, "j%40ne:password")
    eq(p("http://www.google.com/?").force_query, true)
    eq(p("http://www.google.com/?foo=bar?").raw_query, "foo=bar?")
    u = p("mailto:webmaster@golang.org")
    eq({ u.scheme, u.opaque, u.path }, { "mailto", "webmaster@golang.org", "" })
    eq(p("//foo").host, "foo")
    eq(p("///threeslashes").path, "///threeslashes")
    eq(p("http://[fe80::1%25en0]:8080/").host, "[fe80::1%en0]:8080")
    eq(p("http://[fe80::1%25%65%6e%301-._~]/").host, "[fe80::1%en01-._~]")
    eq(p("HTTP://x/a%2fb").scheme, "http")
    eq(p("http://x/a%2fb").raw_path, "/a%2fb")
    eq(p("magnet:?xt=urn:btih:c12&dn=x").query, { xt = "urn:btih:c12", dn = "x" })
    eq(p("*").path, "*")
    eq(p("").path, "")
  `));

  test("mix.url_parse, as some connmix docs name it, is parse_url", () => check(String.raw`
    eq(mix.url_parse("/chat?foo=bar&x=1").query, { foo = "bar", x = "1" })
    local v, err = mix.url_parse("http://[::1")
    fails(v, err, "missing ']' in host")
  `));

  test("query: first value of each key, + and %-decoding, malformed pairs skipped", () => check(String.raw`
    eq(mix.parse_url("/p?a=1&a=2&b=%20x+y&c&;d=1&e=%zz&%41=z").query, { a = "1", b = " x y", c = "", A = "z" })
  `));

  test("errors are nil, err with Go's messages", () => check(String.raw`
    local cases = {
      { "http://[::1", [[parse "http://%[::1": missing ']' in host]] },
      { "http://host:port/", 'invalid port ":port" after host' },
      { "1http://x", "first path segment in URL cannot contain colon" },
      { ":foo", "missing protocol scheme" },
      { "http://%41:8080/", 'invalid URL escape "%%41"' },
      { "http://x/%zz", 'invalid URL escape "%%zz"' },
      { "http://x/%4", 'invalid URL escape "%%4"' },
      { "http://x/#%zz", 'invalid URL escape "%%zz"' },
      { "http://a b/", 'invalid character " " in host name' },
      { "http://user^@host/", "invalid userinfo" },
      { "http://x/\n", "invalid control character in URL" },
    }
    for _, c in ipairs(cases) do
      local v, err = mix.parse_url(c[1])
      fails(v, err, c[2])
    end
    local v, err = mix.parse_url(false)
    fails(v, err, "parse_url expects a string")
  `));
});

describe("bytes_tostring", () => {
  test("byte values to a string, large tables included", () => check(String.raw`
    eq(mix.bytes_tostring({ 104, 105 }), "hi")
    eq(mix.bytes_tostring({}), "")
    eq(mix.bytes_tostring({ 0, 255 }), "\0\255")
    local t = {}
    for i = 1, 10000 do t[i] = i % 256 end
    local s = mix.bytes_tostring(t)
    eq(#s, 10000)
    eq({ s:byte(1), s:byte(4097), s:byte(10000) }, { 1, 4097 % 256, 10000 % 256 })
  `));

  test("anything but byte values is nil, err", () => check(String.raw`
    for _, t in ipairs({ { 1, "x" }, { 1.5 }, { -1 }, { 256 }, { 0/0 } }) do
      local v, err = mix.bytes_tostring(t)
      fails(v, err, "not a byte value")
    end
    local v, err = mix.bytes_tostring("ab")
    fails(v, err, "expects a table")
  `));
});
