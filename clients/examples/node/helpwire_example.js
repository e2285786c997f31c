#!/usr/bin/env node
// helpwire from Node.js with @grpc/grpc-js and @grpc/proto-loader (the
// .proto files are loaded at run time, no generated code): watches the
// ticket events (Tickets.WatchTickets), routes a question the FAQ answers
// and a message that opens a ticket (Router.Route), and prints the ticket's
// CREATED event from the watch.
//
// Usage: node helpwire_example.js [ADDRESS [TOKEN]]
// ADDRESS defaults to $HELPWIRE_ADDRESS, else 127.0.0.1:50051; TOKEN to
// $HELPWIRE_TOKEN (the admin token may do both calls; otherwise a bridge
// token, with an agent token in $HELPWIRE_AGENT_TOKEN for the watch).
// $HELPWIRE_PROTO is the proto/ directory (default: the repository's).
// Prints "route: ...", "route: ...", "event: ..."; exit status 0 when the
// event came, 1 with "error: CODE message" otherwise.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEADLINE_MS = 10000;

function fail(err) {
  const code = err.code !== undefined ? grpc.status[err.code] : 'ERROR';
  console.log('error: ' + code + ' ' + (err.details || err.message));
  process.exit(1);
}

function deadline() {
  return Date.now() + DEADLINE_MS;
}

async function main() {
  const address = process.argv[2] || process.env.HELPWIRE_ADDRESS || '127.0.0.1:50051';
  const token = process.argv[3] || process.env.HELPWIRE_TOKEN;
  const agentToken = process.env.HELPWIRE_AGENT_TOKEN || token;
  if (!token) {
    process.stderr.write('usage: helpwire_example.js [ADDRESS [TOKEN]] (or HELPWIRE_TOKEN)\n');
    process.exit(2);
  }
  const protoDir = process.env.HELPWIRE_PROTO || path.join(__dirname, '..', '..', '..', 'proto');
  const def = protoLoader.loadSync(['helpwire/v1/router.proto', 'helpwire/v1/tickets.proto'], {
    includeDirs: [protoDir],
    keepCase: true, // field names as in the .proto: channel_user_id
    enums: String, // enum values by name: ROUTE_ACTION_AUTO_REPLY
    longs: String,
    defaults: true,
  });
  const v1 = grpc.loadPackageDefinition(def).helpwire.v1;
  const creds = grpc.credentials.createInsecure();
  const router = new v1.Router(address, creds);
  const tickets = new v1.Tickets(address, creds);
  const auth = new grpc.Metadata();
  auth.set('authorization', 'Bearer ' + token);
  const agentAuth = new grpc.Metadata();
  agentAuth.set('authorization', 'Bearer ' + agentToken);

  // The watch first; its headers mean the server has it.
  const watch = tickets.WatchTickets({}, agentAuth, { deadline: deadline() });
  const events = [];
  let wake = null;
  let watchError = null;
  watch.on('data', (ev) => { events.push(ev); if (wake) wake(); });
  watch.on('error', (err) => { if (err.code !== grpc.status.CANCELLED) watchError = err; if (wake) wake(); });
  await new Promise((resolve, reject) => {
    watch.once('metadata', resolve);
    watch.once('error', reject);
  });

  const route = (req) => new Promise((resolve, reject) =>
    router.Route(req, auth, { deadline: deadline() }, (err, reply) => (err ? reject(err) : resolve(reply))));

  // A customer of this run only, so the second message opens a ticket.
  const user = 'example-node-' + process.pid + '-' + Date.now();
  const texts = ['How do I reset my password?', 'The app shows error 4411 when I log in'];
  let reply;
  for (let n = 0; n < texts.length; n++) {
    reply = await route({
      channel: 'CHANNEL_WEBCHAT', channel_user_id: user, display_name: 'Example',
      text: texts[n], message_id: user + '-' + n, locale: 'en',
    });
    if (reply.ticket_id) console.log('route: ' + reply.action + ' ticket=' + reply.ticket_id + ' queue=' + reply.queue);
    else console.log('route: ' + reply.action + ' ' + reply.reply_text);
  }

  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    if (watchError) throw watchError;
    const ev = events.shift();
    if (ev) {
      if (ev.ticket_id === reply.ticket_id && ev.kind === 'TICKET_EVENT_KIND_CREATED') {
        console.log('event: ' + ev.kind + ' ticket=' + ev.ticket_id + ' queue=' + ev.ticket.queue +
                    (ev.cursor ? ' cursor=' + ev.cursor : ''));
        watch.cancel();
        router.close();
        tickets.close();
        return;
      }
      continue;
    }
    if (Date.now() >= end) break;
    await new Promise((resolve) => { wake = resolve; setTimeout(resolve, end - Date.now()); });
    wake = null;
  }
  watch.cancel();
  console.log('error: no CREATED event for ' + (reply.ticket_id || 'the ticket') + ' within ' + DEADLINE_MS / 1000 + ' s');
  process.exit(1);
}

main().catch(fail);
