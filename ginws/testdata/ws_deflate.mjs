// Node's ws client with perMessageDeflate against a ginws endpoint, for deflate_node_test.go.
// Usage: node ws_deflate.mjs WORKSPACE ARGS_JSON, where WORKSPACE is the npm workspace that has ws
// installed (ginws/yjs/testdata/js) and ARGS_JSON is {"echo": URL, "group": URL, "origin": ORIGIN,
// "members": N}. Prints one JSON line: what was negotiated (the server's extension response) and
// received, or {"error": ...}. ws offers context takeover both ways (its defaults), so an endpoint
// with Compression.ContextTakeover takes it; repeated messages then refer to earlier ones.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.argv[2], "package.json"));
const WebSocket = require("ws");
const args = JSON.parse(process.argv[3]);

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 }, headers: { Origin: args.origin } });
    const queue = [];
    const waiters = [];
    ws.on("message", (data, isBinary) => {
      const m = { data: isBinary ? Buffer.from(data) : data.toString(), isBinary };
      const w = waiters.shift();
      if (w) w(m);
      else queue.push(m);
    });
    ws.next = () => new Promise((res) => { const m = queue.shift(); if (m) res(m); else waiters.push(res); });
    ws.on("upgrade", (res) => { ws.response = res.headers["sec-websocket-extensions"] || ""; });
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
  });
}

async function main() {
  const out = { echo: [], group: [] };
  const echo = await open(args.echo);
  out.extensions = echo.response;
  const big = JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ id: i, user: "user" + i, text: "something happened" })));
  const bin = Buffer.alloc(20000, 7);
  const bigger = JSON.stringify(Array.from({ length: 800 }, (_, i) => ({ id: i, user: "user" + (i % 50), text: "event " + i * 7919 })));
  for (const [msg, binary] of [["hi", false], [big, false], [bin, true], ["", false], [big, false], [bigger, false], [big, false]]) {
    echo.send(msg, { binary, compress: true });
    const got = await echo.next();
    out.echo.push(binary ? got.isBinary && Buffer.compare(got.data, msg) === 0 : !got.isBinary && got.data === msg);
  }
  echo.close(1000);

  const members = [];
  for (let i = 0; i < args.members; i++) members.push(await open(args.group));
  members[0].send(JSON.stringify({ text: big }));
  for (const m of members) {
    const got = await m.next();
    out.group.push(JSON.parse(got.data).text === big);
  }
  for (const m of members) m.close(1000);
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.log(JSON.stringify({ error: String(e && e.stack || e) })); process.exit(1); });
