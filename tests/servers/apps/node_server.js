// The scenario's routes on Node's own `http` module, as SSE tutorials write them.
//
// `node node_server.js` listens on a free port of 127.0.0.1, prints
// `PORT <n>` once it listens, and serves until it is terminated or its
// standard input closes. The routes and their rules are those of common.py
// (read from scenario.json).
//
// Two habits of Node servers matter to a client:
// - The response sets `Connection: keep-alive` itself, as tutorials do, and
//   Node then keeps the connection open after the response even though the
//   client asked for `Connection: close`. The keep-alive timeout is long
//   (60 s), so a client that waits for the connection to close instead of
//   ending at the last chunk of the body hangs visibly.
// - `res.write(event); res.end()` sends the last event and the zero-size
//   last chunk in one TCP segment.
"use strict";

const fs = require("fs");
const http = require("http");
const path = require("path");

const scenario = JSON.parse(fs.readFileSync(path.join(__dirname, "scenario.json"), "utf8"));
const sequences = { "/resume": scenario.resume, "/end": scenario.end };
const log = new Map(); // key -> [{path, last_event_id, content_encoding}]
const acks = new Map(); // "key n" -> {done, resolve}

function formatEvent(event) {
  const lines = [];
  if (event.comment !== undefined) lines.push(`: ${event.comment}`);
  if (event.event !== undefined) lines.push(`event: ${event.event}`);
  if (event.id !== undefined) lines.push(`id: ${event.id}`);
  for (const line of event.data.split("\n")) lines.push(`data: ${line}`);
  return lines.join("\n") + "\n\n";
}

function missedAck(what, n, wait) {
  return { event: "error", data: `no ack for ${what} ${n} within ${wait} s` };
}

function nextBatch(route, lastEventId) {
  const { events, end_after: endAfter } = sequences[route];
  const ids = events.map((event) => event.id);
  const start = ids.includes(lastEventId) ? ids.indexOf(lastEventId) + 1 : 0;
  const batch = [];
  for (const event of events.slice(start)) {
    batch.push(event);
    if (endAfter[event.id] !== undefined) return [batch, endAfter[event.id]];
  }
  return [batch, "end"];
}

function ackSlot(key, n) {
  const name = `${key} ${n}`;
  if (!acks.has(name)) {
    const slot = { done: false };
    slot.promise = new Promise((resolve) => {
      slot.resolve = () => {
        slot.done = true;
        resolve(true);
      };
    });
    acks.set(name, slot);
  }
  return acks.get(name);
}

function waitAck(key, n, seconds) {
  const slot = ackSlot(key, n);
  if (slot.done) return Promise.resolve(true);
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(false), seconds * 1000);
  });
  return Promise.race([slot.promise, timeout]).finally(() => clearTimeout(timer));
}

function record(req, query, route) {
  const key = query.get("k");
  const lastEventId = req.headers["last-event-id"] ?? null;
  if (key !== null) {
    if (!log.has(key)) log.set(key, []);
    log.get(key).push({ path: route, last_event_id: lastEventId, content_encoding: null });
  }
  return lastEventId;
}

function startStream(res) {
  res.writeHead(200, {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
  });
}

function small(res, status, body, type = "text/plain") {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

async function handle(req, res) {
  const url = new URL(req.url, "http://127.0.0.1");
  const query = url.searchParams;
  const route = url.pathname;
  if (route === "/_ready") return small(res, 200, "ok");
  if (route === "/_log") {
    return small(res, 200, JSON.stringify(log.get(query.get("k")) ?? []), "application/json");
  }
  if (route === "/_ack") {
    ackSlot(query.get("k"), Number(query.get("n"))).resolve();
    return small(res, 200, "ok");
  }
  if (route === "/plain") {
    startStream(res);
    for (const event of scenario.plain) res.write(formatEvent(event));
    return res.end();
  }
  if (route in sequences) {
    const [batch, how] = nextBatch(route, record(req, query, route));
    if (batch.length === 0) {
      res.writeHead(204);
      return res.end();
    }
    startStream(res);
    for (const event of batch) res.write(formatEvent(event));
    if (how === "drop") {
      // Half an event, then close the socket without the body's last chunk.
      return res.write(scenario.resume.cut_event, () => res.socket.end());
    }
    return res.end();
  }
  if (route === "/gap") {
    const key = query.get("k");
    const wait = Number(query.get("wait"));
    record(req, query, route);
    startStream(res);
    res.write(formatEvent(scenario.gap.before));
    for (const [index, ping] of scenario.gap.pings.entries()) {
      res.write(`: ${ping}\n`);
      if (!(await waitAck(key, index + 1, wait))) {
        res.write(formatEvent(missedAck("ping", index + 1, wait)));
        return res.end();
      }
    }
    res.write(formatEvent(scenario.gap.after));
    return res.end();
  }
  return small(res, 404, "not found");
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(error);
    res.destroy();
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  console.log(`PORT ${server.address().port}`);
});
function stop() {
  server.closeAllConnections();
  server.close(() => process.exit(0));
}
process.on("SIGTERM", stop);
// The test process holds our stdin: when it goes away, so do we.
process.stdin.on("end", stop);
process.stdin.resume();
