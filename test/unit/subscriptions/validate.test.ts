/**
 * Reading subscription bodies: the realized object (defaults applied), the camelCase spellings, the
 * write-only members on replace, and a table of refusals, each with the JSON pointer it names (and
 * the offset inside a CESQL filter).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SubscriptionInvalidError } from "../../../src/core/errors.js";
import { displaySink, publicView, scrub, secretValues } from "../../../src/subscriptions/model.js";
import { isLoopback, readSubscription, underPrefix, type ReadContext } from "../../../src/subscriptions/validate.js";

const ID = "11111111-2222-4333-8444-555555555555";
const NOW = new Date("2026-06-01T00:00:00Z");
const rules = { protocols: ["HTTP", "MQTT3", "MQTT5", "NATS", "AMQP"] as const, allowedSinks: ["https://hooks.example.com/in/", "http://127.0.0.1:9000/", "mqtt://broker:1883", "nats://nats:4222", "amqp://rabbit:5672"] };
const ctx: ReadContext = { rules: { protocols: [...rules.protocols], allowedSinks: rules.allowedSinks }, id: ID, now: NOW };

function refusal(body: unknown, c: ReadContext = ctx): SubscriptionInvalidError {
  try {
    readSubscription(body, c);
  } catch (err) {
    assert.ok(err instanceof SubscriptionInvalidError, `not a SubscriptionInvalidError: ${String(err)}`);
    assert.equal(err.code, "CEB_SUBSCRIPTION_INVALID");
    return err;
  }
  assert.fail(`accepted: ${JSON.stringify(body)}`);
}

describe("subscriptions - reading a body", () => {
  test("HTTP: defaults are applied, the server id wins, secrets are kept but not shown", () => {
    const s = readSubscription(
      {
        id: "ignored",
        protocol: "HTTP",
        sink: "https://hooks.example.com/in/orders",
        types: ["a", "b", "a"],
        source: "https://shop",
        filters: [{ cesql: "subject LIKE 'x%'" }, { prefix: { type: "com." } }],
        config: {},
        protocolsettings: { headers: { "X-Key": "hv-secret" } },
        sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "tok-secret", accesstokenexpiresutc: "2027-01-01T00:00:00+01:00" },
      },
      ctx,
    );
    assert.equal(s.id, ID);
    assert.deepEqual(s.types, ["a", "b"]);
    assert.deepEqual(s.protocolsettings, { method: "POST", mode: "binary", headers: { "X-Key": "hv-secret" } });
    assert.deepEqual(s.sinkcredential, { credentialtype: "ACCESSTOKEN", accesstoken: "tok-secret", accesstokentype: "bearer", accesstokenexpiresutc: "2026-12-31T23:00:00.000Z" });
    const view = publicView(s);
    assert.deepEqual(view, {
      id: ID,
      source: "https://shop",
      types: ["a", "b"],
      filters: [{ cesql: "subject LIKE 'x%'" }, { prefix: { type: "com." } }],
      sink: "https://hooks.example.com/in/orders",
      protocol: "HTTP",
      protocolsettings: { method: "POST", mode: "binary" },
    });
    assert.ok(!JSON.stringify(view).includes("secret"));
    assert.deepEqual(secretValues(s).sort(), ["hv-secret", "tok-secret"]);
  });

  test("camelCase spellings (CAMARA, the OpenAPI) are read; MQTT and NATS defaults", () => {
    const m = readSubscription(
      { protocol: "MQTT5", sink: "mqtt://broker:1883", protocolSettings: { topicName: "orders/all" }, sinkCredential: { credentialType: "PLAIN", identifier: "u", secret: "p4ss" } },
      ctx,
    );
    assert.deepEqual(m.protocolsettings, { topicname: "orders/all", qos: 1, retain: false, mode: "binary" });
    assert.deepEqual(m.sinkcredential, { credentialtype: "PLAIN", identifier: "u", secret: "p4ss" });
    const m3 = readSubscription({ protocol: "MQTT3", sink: "mqtt://broker:1883", protocolsettings: { topicname: "t", qos: 0, retain: true } }, ctx);
    assert.deepEqual(m3.protocolsettings, { topicname: "t", qos: 0, retain: true });
    const n = readSubscription({ protocol: "NATS", sink: "nats://nats:4222", protocolsettings: { subject: "ce.orders" }, sinkcredential: { credentialtype: "ACCESSTOKEN", accessToken: "t0k", accessTokenExpireUtc: "2030-01-01T00:00:00Z" } }, ctx);
    assert.deepEqual(n.protocolsettings, { subject: "ce.orders", mode: "structured" });
    assert.equal(n.sinkcredential?.credentialtype, "ACCESSTOKEN");
  });

  test("AMQP: the address from protocolsettings or from the sink's path; PLAIN only", () => {
    const a = readSubscription({ protocol: "AMQP", sink: "amqp://rabbit:5672", protocolsettings: { address: "/amq/queue/orders" }, sinkcredential: { credentialtype: "PLAIN", identifier: "u", secret: "p" } }, ctx);
    assert.deepEqual(a.protocolsettings, { address: "/amq/queue/orders", sendersettlementmode: "unsettled", mode: "binary" });
    const b = readSubscription({ protocol: "AMQP", sink: "amqp://rabbit:5672/exchange/amq.topic/orders", protocolsettings: { sendersettlementmode: "unsettled", mode: "structured" } }, ctx);
    assert.deepEqual(b.protocolsettings, { address: "/exchange/amq.topic/orders", sendersettlementmode: "unsettled", mode: "structured" });
  });

  test("replace: an absent sinkcredential or headers keeps the stored one; null removes it", () => {
    const previous = readSubscription(
      { protocol: "HTTP", sink: "http://127.0.0.1:9000/h", protocolsettings: { headers: { "X-A": "1" } }, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "keep-me" } },
      ctx,
    );
    const kept = readSubscription({ protocol: "HTTP", sink: "http://127.0.0.1:9000/h2", id: ID }, { ...ctx, previous });
    assert.equal(kept.sinkcredential?.credentialtype, "ACCESSTOKEN");
    assert.deepEqual(kept.protocolsettings, { method: "POST", mode: "binary", headers: { "X-A": "1" } });
    const dropped = readSubscription({ protocol: "HTTP", sink: "http://127.0.0.1:9000/h2", sinkcredential: null, protocolsettings: { headers: null } }, { ...ctx, previous });
    assert.equal(dropped.sinkcredential, undefined);
    assert.deepEqual(dropped.protocolsettings, { method: "POST", mode: "binary" });
    assert.equal(refusal({ id: "other", protocol: "HTTP", sink: "http://127.0.0.1:9000/h" }, { ...ctx, previous }).field, "/id");
  });

  test("refusals name the member as a JSON pointer into the body as sent", () => {
    const http = { protocol: "HTTP", sink: "https://hooks.example.com/in/x" };
    const rows: [unknown, string, RegExp][] = [
      [[], "", /must be a JSON object/],
      [null, "", /must be a JSON object/],
      [{ ...http, extra: 1 }, "/extra", /unknown member "extra"/],
      [{ ...http, Sink: "x" }, "/Sink", /given twice/],
      [{ sink: http.sink }, "/protocol", /protocol is required/],
      [{ ...http, protocol: "http" }, "/protocol", /case-sensitive/],
      [{ ...http, protocol: "KAFKA" }, "/protocol", /not supported/],
      [{ protocol: "HTTP" }, "/sink", /sink is required/],
      [{ ...http, sink: "not a url" }, "/sink", /absolute URL/],
      [{ ...http, sink: "https://evil.example.com/in/x" }, "/sink", /allowed_sinks/],
      [{ ...http, sink: "https://hooks.example.com/inside" }, "/sink", /allowed_sinks/],
      [{ ...http, sink: "https://hooks.example.com.evil.net/in/x" }, "/sink", /allowed_sinks/],
      [{ ...http, sink: "https://u:p@hooks.example.com/in/x" }, "/sink", /user info/],
      [{ ...http, sink: "https://hooks.example.com/in/x?access_token=t" }, "/sink", /access_token/],
      [{ ...http, sink: "http://hooks.example.com/in/x" }, "/sink", /https:\/\/ unless/],
      [{ ...http, sink: "mqtt://broker:1883" }, "/sink", /https:\/\/ or http:\/\//],
      [{ ...http, types: [] }, "/types", /non-empty array/],
      [{ ...http, types: ["a", 3] }, "/types/1", /non-empty string/],
      [{ ...http, source: "" }, "/source", /non-empty string/],
      [{ ...http, config: { interval: 5 } }, "/config/interval", /no config keys/],
      [{ ...http, filters: {} }, "/filters", /array/],
      [{ ...http, filters: [{ sql: "type = 'a' AND AND" }] }, "/filters/0/sql", /unexpected token/],
      [{ ...http, filters: [{ exact: { type: "x" } }, { all: [{ prefix: { a: "b" } }, { cesql: "LEFT(type) = 'a'" }] }] }, "/filters/1/all/1/cesql", /LEFT takes 2/],
      [{ ...http, filters: [{ nope: 1 }] }, "/filters/0/nope", /unsupported filter dialect/],
      [{ ...http, filters: [{ exact: { "Bad/Name": "v" } }] }, "/filters/0/exact/Bad~1Name", /attribute name/],
      [{ ...http, protocolsettings: { method: "PUT" } }, "/protocolsettings/method", /POST/],
      [{ ...http, protocolsettings: { topicname: "x" } }, "/protocolsettings/topicname", /unknown member/],
      [{ ...http, protocolsettings: { headers: { "ce-id": "x" } } }, "/protocolsettings/headers/ce-id", /set by the bridge/],
      [{ ...http, protocolsettings: { headers: { Authorization: "x" } } }, "/protocolsettings/headers/Authorization", /sinkcredential/],
      [{ ...http, protocolsettings: { headers: { "X-A": "a\nb" } } }, "/protocolsettings/headers/X-A", /control characters/],
      [{ ...http, protocolsettings: { mode: "batch" } }, "/protocolsettings/mode", /binary" or "structured/],
      [{ ...http, sinkcredential: { credentialtype: "PLAIN", identifier: "u", secret: "p" } }, "/sinkcredential/credentialtype", /ACCESSTOKEN \(bearer\)/],
      [{ ...http, sinkcredential: { credentialtype: "REFRESHTOKEN" } }, "/sinkcredential/credentialtype", /not supported/],
      [{ ...http, sinkcredential: { credentialtype: "ACCESSTOKEN" } }, "/sinkcredential/accesstoken", /required/],
      [{ ...http, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "t", secret: "x" } }, "/sinkcredential/secret", /does not belong/],
      [{ ...http, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "t", accesstokenexpiresutc: "tomorrow" } }, "/sinkcredential/accesstokenexpiresutc", /RFC 3339/],
      [{ ...http, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "t", accesstokenexpiresutc: "2020-01-01T00:00:00Z" } }, "/sinkcredential/accesstokenexpiresutc", /already expired/],
      [{ ...http, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "t", accesstokentype: "mac" } }, "/sinkcredential/accesstokentype", /bearer/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883" }, "/protocolsettings/topicname", /required/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883/x", protocolsettings: { topicname: "t" } }, "/sink", /server only/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "a/+/b" } }, "/protocolsettings/topicname", /wildcards/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "a/{type}" } }, "/protocolsettings/topicname", /literal/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "t", qos: 3 } }, "/protocolsettings/qos", /0, 1 or 2/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "t", expiry: 5 } }, "/protocolsettings/expiry", /not supported/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "t", userProperties: {} } }, "/protocolsettings/userProperties", /not supported/],
      [{ protocol: "MQTT3", sink: "mqtt://broker:1883", protocolsettings: { topicname: "t", mode: "binary" } }, "/protocolsettings/mode", /3\.1\.1/],
      [{ protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "t" }, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "x" } }, "/sinkcredential/credentialtype", /PLAIN/],
      [{ protocol: "NATS", sink: "nats://nats:4222", protocolsettings: { subject: "a.>" } }, "/protocolsettings/subject", /wildcards/],
      [{ protocol: "NATS", sink: "nats://nats:4222", protocolsettings: { subject: "a..b" } }, "/protocolsettings/subject", /empty tokens/],
      [{ protocol: "NATS", sink: "nats://nats:4222", protocolsettings: {} }, "/protocolsettings/subject", /required/],
      [{ protocol: "NATS", sink: "nats://other:4222", protocolsettings: { subject: "s" } }, "/sink", /allowed_sinks/],
      [{ protocol: "AMQP", sink: "amqp://rabbit:5672" }, "/protocolsettings/address", /required for AMQP/],
      [{ protocol: "AMQP", sink: "amqp://rabbit:5672", protocolsettings: { address: "/q/{type}" } }, "/protocolsettings/address", /literal/],
      [{ protocol: "AMQP", sink: "amqp://rabbit:5672/q", protocolsettings: { sendersettlementmode: "settled" } }, "/protocolsettings/sendersettlementmode", /unsettled/],
      [{ protocol: "AMQP", sink: "amqp://rabbit:5672/q", protocolsettings: { linkName: "x" } }, "/protocolsettings/linkName", /not supported/],
      [{ protocol: "AMQP", sink: "amqp://rabbit:5672/q", sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "t" } }, "/sinkcredential/credentialtype", /PLAIN/],
      [{ protocol: "AMQP", sink: "amqps://rabbit:5671/q" }, "/sink", /allowed_sinks/],
    ];
    for (const [body, field, message] of rows) {
      const err = refusal(body);
      assert.equal(err.field, field, `${JSON.stringify(body)}: ${err.message}`);
      assert.match(err.message, message, JSON.stringify(body));
    }
  });

  test("a CESQL error carries its offset inside the expression", () => {
    const err = refusal({ protocol: "HTTP", sink: "https://hooks.example.com/in/x", filters: [{ cesql: "type = 'a' AND AND" }] });
    assert.equal(err.field, "/filters/0/cesql");
    assert.equal(err.position, 15);
  });

  test("a stream's protocols and nesting depth are enforced", () => {
    const onlyNats: ReadContext = { ...ctx, rules: { protocols: ["NATS"], allowedSinks: rules.allowedSinks } };
    assert.match(refusal({ protocol: "HTTP", sink: "https://hooks.example.com/in/x" }, onlyNats).message, /offers NATS/);
    let deep: unknown = {};
    for (let i = 0; i < 40; i++) deep = { not: deep };
    assert.equal(refusal({ protocol: "HTTP", sink: "https://hooks.example.com/in/x", filters: [deep] }).field, "");
  });

  test("helpers: loopback, prefixes, display and scrubbing", () => {
    for (const h of ["127.0.0.1", "127.9.9.9", "localhost", "[::1]", "api.localhost"]) assert.equal(isLoopback(h), true, h);
    for (const h of ["128.0.0.1", "example.com", "[::2]", "10.0.0.1", "localhost.example.com"]) assert.equal(isLoopback(h), false, h);
    const u = (s: string) => new URL(s);
    assert.equal(underPrefix(u("nats://nats:4222"), "nats://nats:4222"), true);
    assert.equal(underPrefix(u("nats://nats:42220"), "nats://nats:4222"), false);
    assert.equal(underPrefix(u("https://h/a/b"), "https://h/a"), true);
    assert.equal(underPrefix(u("https://h/ab"), "https://h/a"), false);
    assert.equal(underPrefix(u("https://h/a"), "https://h/a/"), true);
    assert.equal(underPrefix(u("https://H:443/a/x"), "https://h/a/"), true);
    assert.equal(displaySink("https://u:p@h.example.com/hook?access=1#f"), "https://h.example.com/hook");
    assert.equal(displaySink("nats://nats:4222"), "nats://nats:4222");
    assert.equal(scrub("auth failed for s3cr3t at s3cr3t", ["s3cr3t"]), "auth failed for [redacted] at [redacted]");
  });
});
