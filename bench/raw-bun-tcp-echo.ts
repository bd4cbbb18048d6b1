// The ceiling for bench/tcp-echo.ts: Bun's own TCP server echoing newline-framed lines, no Lua. The complete
// lines of a read go back in one write (the least a line echo can do); a partial line waits for its end.
//   PORT=7001 bun raw-bun-tcp-echo.ts
const server = Bun.listen<{ rest: Buffer | null }>({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 7001),
  socket: {
    open(s) {
      s.data = { rest: null };
    },
    data(s, chunk) {
      const buf = s.data.rest ? Buffer.concat([s.data.rest, chunk]) : chunk;
      const end = buf.lastIndexOf(10) + 1;
      if (end > 0) s.write(buf.subarray(0, end));
      s.data.rest = end < buf.length ? Buffer.from(buf.subarray(end)) : null;
    },
  },
});
console.log(`raw bun tcp echo on ${server.port}`);

export {}; // a module: its top-level names are its own
