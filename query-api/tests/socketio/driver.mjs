// Drives real socket.io-client v4 sockets for the Rust tests: one JSON
// command per line on stdin, one JSON report per line on stdout.
//
//   {"cmd":"connect","client":"a","url":"http://...","opts":{...}}
//   {"cmd":"emit","client":"a","event":"subscribe","data":{...},"ack":true}
//   {"cmd":"disconnect","client":"a"}
//   {"cmd":"reconnect","client":"a","auth":{...}}
//
// Reports: {"client":"a","event":<name>,"data":<first argument>} for every
// event the server emits, plus "$open" and "$connect" (with the transport),
// "$connect_error", "$disconnect", "$upgrade" and "$ack".
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const sockets = new Map();
const report = (client, event, data) =>
  process.stdout.write(JSON.stringify({ client, event, data: data ?? null }) + "\n");

function connect(client, url, opts) {
  const socket = io(url, { ...opts, forceNew: true, reconnection: false });
  sockets.set(client, socket);
  // the Engine.IO connection opens (on its first transport) before the
  // socket.io one, and may upgrade before or after the socket connects
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    report(client, "$open", { transport: engine.transport.name });
    engine.on("upgrade", (t) => report(client, "$upgrade", { transport: t.name }));
  });
  socket.on("connect", () =>
    report(client, "$connect", { transport: socket.io.engine.transport.name }));
  socket.on("connect_error", (e) => report(client, "$connect_error", { message: e.message }));
  socket.on("disconnect", (reason) => report(client, "$disconnect", { reason }));
  socket.onAny((event, data) => report(client, event, data));
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let m;
  try {
    m = JSON.parse(line);
  } catch (e) {
    report(null, "$driver_error", { message: `bad command: ${e.message}` });
    return;
  }
  const socket = sockets.get(m.client);
  switch (m.cmd) {
    case "connect":
      connect(m.client, m.url, m.opts ?? {});
      break;
    case "emit": {
      const args = "data" in m ? [m.data] : [];
      if (m.ack) socket.emit(m.event, ...args, (answer) => report(m.client, "$ack", answer));
      else socket.emit(m.event, ...args);
      break;
    }
    case "disconnect":
      socket.disconnect();
      break;
    case "reconnect":
      if (m.auth) socket.auth = m.auth;
      socket.connect();
      break;
    default:
      report(m.client ?? null, "$driver_error", { message: `unknown command ${m.cmd}` });
  }
});
lines.on("close", () => process.exit(0));
report(null, "$ready", { node: process.version });
