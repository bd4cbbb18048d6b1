// protocols.text and protocols.jsonrpc called the way connmix's own modules are (1.0.1 callbacks, the module
// functions assigned or wrapped), with their documented behaviour: one package per line, pushes as lines,
// jsonrpc's encode_table and a bad request closing the connection.
import { afterEach, describe, expect, test } from "bun:test";
import { TcpClient } from "../engine/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { startEntry } from "./lua-root.ts";

afterEach(cleanupAll);

describe("protocols.text", () => {
  test("wrapped in 1.0.1 callbacks: lines in, lines out, pushes become lines", async () => {
    const s = await startEntry(`
local text = require("protocols/text")
function on_connect(conn) conn:send(text.encode("hello " .. conn:client_id())) end
function protocol_input(buf, conn) return text.input(buf) end
function protocol_decode(str, conn) return text.decode(str) end
function protocol_encode(str, conn) return text.encode(str) end
function on_message(data, conn) text.send("got [" .. data .. "]") end
function on_close(err, conn) end`, { protocol: "socket" });
    const c = await TcpClient.connect(s.port);
    const id = Number((await c.lines(1))[0]!.split(" ")[1]);
    c.write("one\ntwo\r\n\nthr");
    c.write("ee\n");
    expect(await c.lines(5)).toEqual([`hello ${id}`, "got [one]", "got [two]", "got []", "got [three]"]);
    expect(s.engine.node.sendLocal(id, "pushed", 1, false)).toBeNull();
    expect((await c.lines(6))[5]).toBe("pushed");
  });
});

describe("protocols.jsonrpc", () => {
  const ENTRY = `
local jsonrpc = require("protocols.jsonrpc")
function on_connect(conn) end
function protocol_input(buf, conn) return jsonrpc.input(buf) end
function protocol_decode(str, conn) return jsonrpc.decode(str, conn) end
function protocol_encode(str, conn) return jsonrpc.encode(str) end
function on_message(data, conn)
  local line, err = jsonrpc.encode_table({ result = data.params[1] * 2, id = data.id })
  conn:send(line)
end
function on_close(err, conn) end`;

  test("requests decode to tables, encode_table answers with a line", async () => {
    const s = await startEntry(ENTRY, { protocol: "socket" });
    const c = await TcpClient.connect(s.port);
    c.write('{"method":"double","params":[21],"id":1}\n{"method":"double","params":[2],"id":2}\n');
    expect((await c.lines(2)).map((l) => JSON.parse(l))).toEqual([{ result: 42, id: 1 }, { result: 4, id: 2 }]);
  });

  test("a line that is not a request closes the connection, as connmix's module does", async () => {
    const s = await startEntry(ENTRY, { protocol: "socket" });
    for (const bad of ["not json\n", '{"params":[1]}\n']) {
      const c = await TcpClient.connect(s.port);
      c.write(bad + '{"method":"double","params":[1],"id":3}\n');
      await c.waitClosed();
      const lines = c.text().trim().split("\n");
      expect(lines).toHaveLength(1); // the error, and nothing for the request after it
      expect(JSON.parse(lines[0]!).error.code).toBeLessThan(-32000);
    }
  });
});
