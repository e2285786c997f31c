#!/usr/bin/env node
// A helpwire client from another gRPC implementation: Node.js with
// @grpc/grpc-js, knowing nothing of the API beforehand. It lists the
// services through server reflection (grpc-js-reflection-client), loads
// helpwire.v1.Router's descriptor through reflection, calls Router.Route
// with the bridge token and prints the reply as JSON. VERSION picks the
// reflection service: v1 (grpc.reflection.v1) or v1alpha (the default).
//
// Usage: node tests/js/reflection_client.js HOST:PORT BRIDGE_TOKEN [VERSION]
// Exit status 0 only when every step worked.
'use strict';

const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

// Every service of the API contract (SPEC.md), plus health.
const REQUIRED_SERVICES = [
  'helpwire.v1.Router',
  'helpwire.v1.Knowledge',
  'helpwire.v1.Customers',
  'helpwire.v1.Agents',
  'helpwire.v1.Tickets',
  'helpwire.v1.Surveys',
  'helpwire.v1.Outbox',
  'grpc.health.v1.Health',
];

const DEADLINE_MS = 10000;

function deadline() {
  return Date.now() + DEADLINE_MS;
}

function fail(msg) {
  process.stderr.write('reflection_client: ' + msg + '\n');
  process.exit(1);
}

async function main() {
  const [target, token, version = 'v1alpha'] = process.argv.slice(2);
  if (!target || !token) fail('usage: reflection_client.js HOST:PORT BRIDGE_TOKEN [v1|v1alpha]');
  if (version !== 'v1' && version !== 'v1alpha') fail('VERSION is v1 or v1alpha, not ' + version);

  const creds = grpc.credentials.createInsecure();
  // Reflection is public: no token on these calls.
  const reflection = new GrpcReflection(target, creds, {}, version);

  const services = await reflection.listServices('*', { deadline: deadline() });
  if (!Array.isArray(services)) fail('listServices did not return a list: ' + JSON.stringify(services));
  const missing = REQUIRED_SERVICES.filter((s) => !services.includes(s));
  if (missing.length) fail('reflection does not list ' + missing.join(', ') + ' (got ' + services.join(', ') + ')');
  process.stderr.write('services: ' + services.join(' ') + '\n');

  const descriptor = await reflection.getDescriptorBySymbol('helpwire.v1.Router', { deadline: deadline() });
  // keepCase: descriptors from reflection keep the .proto field names
  // (proto-loader ignores camelCase conversion for descriptor sets).
  const pkg = descriptor.getPackageObject({ keepCase: true, enums: String, longs: String, defaults: true });
  const Router = pkg && pkg.helpwire && pkg.helpwire.v1 && pkg.helpwire.v1.Router;
  if (typeof Router !== 'function') fail('helpwire.v1.Router is not a service in the reflected descriptor');
  if (!Router.service || !Router.service.Route) fail('helpwire.v1.Router has no Route method');

  const router = new Router(target, creds);
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer ' + token);
  const request = {
    channel: 'CHANNEL_WEBCHAT',
    channel_user_id: 'js-' + process.pid,
    display_name: 'Node',
    text: '如何重置密码',
    message_id: 'js-' + process.pid + '-' + Date.now(),
    locale: 'zh-CN',
  };
  const reply = await new Promise((resolve, reject) => {
    router.Route(request, md, { deadline: deadline() }, (err, r) => (err ? reject(err) : resolve(r)));
  });
  router.close();
  process.stdout.write(JSON.stringify(reply) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => fail((err && (err.stack || err.message)) || String(err)),
);
