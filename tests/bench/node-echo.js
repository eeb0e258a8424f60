// SPDX-License-Identifier: MIT
// The non-forking ceiling for tests/bench/run: an event-driven echo server
// in Node.js (net + socket.pipe(socket)). Usage: node node-echo.js HOST PORT
'use strict';
const net = require('net');
const [host, port] = process.argv.slice(2);
const server = net.createServer({ noDelay: true }, (sock) => {
  sock.on('error', () => sock.destroy());
  sock.pipe(sock);
});
server.maxConnections = 0x7fffffff;
server.on('error', (e) => { console.error(`node-echo: ${e.message}`); process.exit(1); });
server.listen({ host, port: Number(port), backlog: 4096 }, () => {
  console.log(`node-echo listening on ${host}:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
