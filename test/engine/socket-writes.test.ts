// A socket server holds the writes a read makes while it runs in Lua and writes them when it returns, each
// connection's in one write (src/engine/socket-server.ts). What a client sees must not change: every reply in
// order, bytes intact after Lua collected them, replies before a close, a room's lines in the order sent.
import { afterAll, expect, test } from "bun:test";
import { cleanupAll } from "../helpers/files";
import { until } from "../helpers/wait";
import { startServer, TcpClient } from "./helpers";

afterAll(cleanupAll);

const ENTRY = `
local text = require("protocols.text")
protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode
function on_message(line, conn)
  if line == "join" then conn:subscribe("room") return text.send(conn, "joined") end
  if line == "bytes" then
    local function send(i) conn:send(string.rep(string.char(65 + i), 1000) .. "\\n") end
    send(0) send(1) send(2)
    -- The strings are garbage now: collected, their memory is given to new ones, which a held view would show.
    collectgarbage()
    local others = {}
    for j = 1, 20 do others[j] = string.rep(string.char(100 + j), 1001) end
    return
  end
  if line == "bye" then
    text.send(conn, "one")
    text.send(conn, "two")
    return conn:close()
  end
  if line:sub(1, 4) == "pub " then
    text.send(conn, "before " .. line:sub(5))
    mix.mesh.publish("room", line:sub(5))
    return text.send(conn, "after " .. line:sub(5))
  end
  text.send(conn, "echo " .. line)
end
`;
const socketServer = () => startServer(ENTRY, { protocol: "socket" });
const lines = (c: TcpClient) => c.text().split("\n").filter((l) => l !== "");

test("many lines in one write: every reply, in order", async () => {
  const s = await socketServer();
  const c = await TcpClient.connect(s.port);
  c.write(Array.from({ length: 500 }, (_, i) => `${i}\n`).join(""));
  await until(() => lines(c).length >= 500, 5000, "500 replies");
  expect(lines(c)).toEqual(Array.from({ length: 500 }, (_, i) => `echo ${i}`));
});

test("held bytes stay intact after Lua collects the strings they came from", async () => {
  const s = await socketServer();
  const c = await TcpClient.connect(s.port);
  c.write("bytes\n");
  await until(() => lines(c).length >= 3, 5000, "3 lines");
  expect(lines(c)).toEqual(["A".repeat(1000), "B".repeat(1000), "C".repeat(1000)]);
});

test("replies before conn:close() arrive, then the connection ends", async () => {
  const s = await socketServer();
  const c = await TcpClient.connect(s.port);
  c.write("x\nbye\ny\n");
  await c.waitClosed();
  expect(lines(c)).toEqual(["echo x", "one", "two"]);
});

test("a publication keeps its place among the sender's replies; other members get it", async () => {
  const s = await socketServer();
  const [a, b] = [await TcpClient.connect(s.port), await TcpClient.connect(s.port)];
  a.write("join\n");
  b.write("join\n");
  await until(() => lines(a).length === 1 && lines(b).length === 1, 5000, "both joined");
  a.write("pub 1\npub 2\n");
  await until(() => lines(a).length === 7 && lines(b).length === 3, 5000, "the replies and publications");
  expect(lines(a).slice(1)).toEqual(["before 1", "1", "after 1", "before 2", "2", "after 2"]);
  expect(lines(b).slice(1)).toEqual(["1", "2"]);
});
