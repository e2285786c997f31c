#!/usr/bin/env node
// helpwire's structured errors from Node.js (@grpc/grpc-js): makes calls
// that fail (a bad field, an unknown id, a role without the right, no
// token), reads the trailing metadata grpc-status-details-bin of each
// error, decodes the google.rpc.Status in it with protobufjs from the
// project's proto/google/rpc/*.proto (Any and Duration are protobufjs'
// bundled google/protobuf types), and prints one JSON line per call:
// {"call", "code", "message", "status": {code, message, details: [{"@type", ...}]}}.
//
// Usage: node tests/js/errors_client.js HOST:PORT ADMIN_TOKEN BRIDGE_TOKEN
// Exit status 0 when every call failed (the details are for the caller to
// judge); 1 when one succeeded or the script itself failed.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const DEADLINE_MS = 10000;

function fail(msg) {
  process.stderr.write('errors_client: ' + msg + '\n');
  process.exit(1);
}

// proto/ of the source tree: this script's real path is tests/js/.
function protoRoot() {
  const dir = path.resolve(path.dirname(fs.realpathSync(__filename)), '..', '..', 'proto');
  const root = new protobuf.Root();
  const resolve = root.resolvePath;
  root.resolvePath = (origin, target) =>
    target.startsWith('google/rpc/') ? path.join(dir, target) : resolve(origin, target);
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  return root;
}

const root = protoRoot();
const Status = root.lookupType('google.rpc.Status');

function decodeStatus(buf) {
  const st = Status.decode(buf);
  const details = st.details.map((any) => {
    const name = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = root.lookupType(name);
    const obj = type.toObject(type.decode(any.value), { longs: Number, defaults: false });
    return Object.assign({ '@type': name }, obj);
  });
  return { code: st.code, message: st.message, details };
}

// A length-delimited string field, for the few requests built by hand.
function stringField(num, s) {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 127) fail('string too long for this encoder');
  return Buffer.concat([Buffer.from([(num << 3) | 2, b.length]), b]);
}

function call(client, method, request, token) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    if (token) md.set('authorization', 'Bearer ' + token);
    client.makeUnaryRequest(method, (b) => b, (b) => b, request, md, { deadline: Date.now() + DEADLINE_MS },
      (err) => resolve(err));
  });
}

async function main() {
  const [target, admin, bridge] = process.argv.slice(2);
  if (!target || !admin || !bridge) fail('usage: errors_client.js HOST:PORT ADMIN_TOKEN BRIDGE_TOKEN');
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const calls = [
    ['bad_field', '/helpwire.v1.Tickets/GetTicket', stringField(1, 'bad id!'), admin],
    ['unknown_id', '/helpwire.v1.Tickets/GetTicket', stringField(1, 't-does-not-exist'), admin],
    ['denied', '/helpwire.v1.Tickets/ListTickets', Buffer.alloc(0), bridge],
    ['no_token', '/helpwire.v1.Tickets/ListTickets', Buffer.alloc(0), null],
  ];
  for (const [name, method, req, token] of calls) {
    const err = await call(client, method, req, token);
    if (!err) fail(name + ': ' + method + ' succeeded');
    const raw = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
    const out = { call: name, code: err.code, message: err.details };
    if (raw.length) out.status = decodeStatus(raw[0]);
    process.stdout.write(JSON.stringify(out) + '\n');
  }
  client.close();
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
