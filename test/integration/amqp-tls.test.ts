/**
 * AMQP over TLS on a private RabbitMQ with a TLS listener: SASL PLAIN inside TLS with the CA
 * trusted, SASL EXTERNAL with a client certificate (its common name is the RabbitMQ user), and the
 * refusals: an untrusted server certificate, a client certificate from another CA.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { amqpSink, amqpSource } from "../../connectors/amqp/definition.js";
import { declareQueue, startRabbitMq, type RabbitHandle } from "../support/brokers.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, sampleEvents } from "../support/events.js";
import { FakeInbox } from "../support/fake-inbox.js";
import { sleep } from "../support/wait.js";

let rabbit: RabbitHandle;
let certs: TestCerts;
const makeSource = await sourceFactory(amqpSource);
const makeSink = await sinkFactory(amqpSink);

before(async () => {
  certs = makeTestCerts();
  rabbit = await startRabbitMq({ tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert } });
  // SASL EXTERNAL: the client certificate's CN is the user name.
  await rabbit.ctl("add_user", "cebridge-test-client", "unused-password-not-for-external");
  await rabbit.ctl("set_permissions", "-p", "/", "cebridge-test-client", ".*", ".*", ".*");
  await declareQueue(rabbit.url, "tls-q");
});

after(async () => {
  await rabbit?.close();
  certs?.cleanup();
});

/** Sink → queue → source over `tls` with the given auth; checks the events arrived intact. */
async function roundTrip(tag: string, auth: Record<string, unknown>): Promise<void> {
  const cfg = { url: rabbit.tlsUrl!, address: "/amq/queue/tls-q", ...auth };
  const sink = makeSink(cfg, testContext());
  const src = makeSource(cfg, testContext());
  const inbox = new FakeInbox();
  try {
    await sink.open();
    const evs = sampleEvents(5, tag);
    await Promise.all(evs.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
    await src.start(inbox);
    await inbox.waitForSettled(5);
    const got = new Map(inbox.offers.map((o) => [String(o.events[0]!.attributes["id"]), o.events[0]!]));
    for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e);
  } finally {
    await sink.close();
    await src.close();
  }
}

/** True when `open` stays unresolved for `ms` (the connector keeps retrying a refused handshake). */
async function staysClosed(open: Promise<void>, ms: number): Promise<boolean> {
  open.catch(() => {});
  return Promise.race([open.then(() => false, () => true), sleep(ms).then(() => true)]);
}

describe("amqp tls", { timeout: 120_000 }, () => {
  it("amqp tls - amqps:// with the CA trusted, SASL PLAIN inside TLS", async () => {
    await roundTrip("tls-plain", { username: "guest", password: "guest", tls: { ca: certs.ca.cert } });
  });

  it("amqp tls - SASL EXTERNAL with a client certificate (mutual TLS, no password)", async () => {
    await roundTrip("tls-ext", { sasl: "EXTERNAL", tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
  });

  it("amqp tls - refused: an untrusted server certificate, and a client certificate from another CA", async () => {
    const ctx1 = testContext();
    const untrusted = makeSink({ url: rabbit.tlsUrl!, address: "/amq/queue/tls-q", username: "guest", password: "guest" }, ctx1);
    const ctx2 = testContext();
    const rogue = makeSink({ url: rabbit.tlsUrl!, address: "/amq/queue/tls-q", sasl: "EXTERNAL", tls: { ca: certs.ca.cert, cert: certs.rogueClient.cert, key: certs.rogueClient.key } }, ctx2);
    try {
      assert.equal(await staysClosed(untrusted.open(), 3000), true, "a server certificate signed by an unknown CA is refused");
      assert.equal(await staysClosed(rogue.open(), 3000), true, "a client certificate from another CA is refused");
      assert.ok(!ctx1.ups.includes(true) && !ctx2.ups.includes(true), "never reported up");
    } finally {
      await untrusted.close();
      await rogue.close();
    }
  });
});
