/**
 * The `subscriptions:` section is checked like the rest of the file (FILE:LINE:COL, stable codes),
 * and a valid one wires each stream into its route as the virtual sink `subscriptions:<stream>`.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { builtinRegistry } from "../../../connectors/index.js";
import { formatIssue } from "../../../src/config/issues.js";
import { checkConfigText } from "../../../src/config/load.js";

const registry = builtinRegistry();
const lint = (yaml: string) => checkConfigText(yaml, "c.yaml", registry, {});
const lines = (yaml: string) => lint(yaml).issues.map(formatIssue);

const BASE = `
sources:
  in: { type: http, listen: "127.0.0.1:9000" }
sinks:
  out: { type: stdout }
  dlq: { type: file, path: /tmp/dl.jsonl }
  sub_dlq: { type: file, path: /tmp/sub-dl.jsonl }
routes:
  - name: r
    from: in
    to: [out]
    dead_letter: dlq
`;

describe("config - subscriptions", () => {
  test("a valid section loads with defaults, and the stream's route gains its virtual sink", () => {
    const { config, issues } = lint(`${BASE}
subscriptions:
  auth: { bearer: "t0ken" }
  state_dir: /var/lib/cebridge/subs
  streams:
    orders:
      route: r
      allowed_sinks: ["https://hooks.example.com/", "nats://127.0.0.1:4222"]
      dead_letter: sub_dlq
      queue: { type: disk }
`);
    assert.deepEqual(issues.map(formatIssue), []);
    assert.ok(config?.subscriptions);
    const s = config.subscriptions;
    assert.equal(s.listen, "127.0.0.1:8082");
    assert.equal(s.max_subscriptions, 100);
    assert.equal(s.max_body, 64 * 1024);
    const o = s.streams["orders"]!;
    assert.deepEqual(o.protocols, ["HTTP", "MQTT3", "MQTT5", "NATS", "AMQP"]);
    assert.equal(o.max_in_flight, 16);
    assert.deepEqual(o.retry, { initial: 1000, max: 60_000, max_elapsed: 3_600_000 });
    assert.equal(o.timeout, 30_000);
    assert.equal(o.connect_timeout, 10_000);
    assert.deepEqual(o.queue, { type: "disk" });
    assert.deepEqual(config.routes[0]!.to, ["out", "subscriptions:orders"]);
    assert.deepEqual(config.sinks["subscriptions:orders"], { type: "subscriptions", options: { stream: "orders" } });
    assert.ok(Object.isFrozen(config.sinks["subscriptions:orders"]));
  });

  test("every problem is reported at its line and column with a stable code", () => {
    assert.deepEqual(
      lines(`${BASE}
subscriptions:
  listen: "127.0.0.1:8081"
  state_dir: /s
  max_subscriptions: 0
  streams:
    orders:
      route: nope
      protocols: [HTTP, KAFKA]
      allowed_sinks: ["https://u:p@hooks.example.com/", "ftp://x/", "nats://h:4222/?token=1", "not a url"]
      dead_letter: missing
      queue: { type: disk, path: /x }
      extra: 1
    "bad name!": { route: r }
`),
      [
        'c.yaml:7:3 warning CFG_REF sinks.sub_dlq: sink "sub_dlq" is not used by any route',
        "c.yaml:15:3 error CFG_REQUIRED subscriptions: the Subscriptions API needs auth.bearer, or tls.ca (clients then authenticate with certificates)",
        'c.yaml:15:11 error CFG_VALUE subscriptions.listen: "127.0.0.1:8081" is also engine.admin.listen: the API needs its own listener',
        "c.yaml:17:22 error CFG_VALUE subscriptions.max_subscriptions: must be >= 1",
        'c.yaml:20:14 error CFG_REF subscriptions.streams.orders.route: no route named "nope" (defined: r)',
        'c.yaml:21:25 error CFG_VALUE subscriptions.streams.orders.protocols[1]: must be one of: "HTTP", "MQTT3", "MQTT5", "NATS", "AMQP"',
        "c.yaml:22:23 error CFG_VALUE subscriptions.streams.orders.allowed_sinks[0]: a sink prefix cannot hold credentials; subscribers send theirs in sinkcredential",
        'c.yaml:22:57 error CFG_VALUE subscriptions.streams.orders.allowed_sinks[1]: scheme "ftp:" is none of http: https: mqtt: mqtts: nats: tls: amqp: amqps:',
        "c.yaml:22:69 error CFG_VALUE subscriptions.streams.orders.allowed_sinks[2]: a sink prefix cannot have a query or a fragment",
        'c.yaml:22:95 error CFG_VALUE subscriptions.streams.orders.allowed_sinks[3]: "not a url" is not a URL (write it like https://hooks.example.com/ or nats://nats:4222)',
        'c.yaml:23:20 error CFG_REF subscriptions.streams.orders.dead_letter: no sink named "missing" (defined: out, dlq, sub_dlq)',
        'c.yaml:24:28 error CFG_UNKNOWN_KEY subscriptions.streams.orders.queue.path: unknown key "path"; allowed: type, max_bytes, fsync',
        'c.yaml:25:7 error CFG_UNKNOWN_KEY subscriptions.streams.orders.extra: unknown key "extra"; allowed: route, protocols, allowed_sinks, max_in_flight, queue, retry, timeout, connect_timeout, dead_letter',
        'c.yaml:26:5 error CFG_VALUE subscriptions.streams.bad name!: "bad name!" is not a valid id: use letters, digits, "_", "." and "-", not starting with "." or "-"',
      ],
    );
  });

  test("warnings: no dead letter, no allowed sinks; a sink used only for a stream's dead letters is used", () => {
    assert.deepEqual(
      lines(`${BASE}
subscriptions:
  tls: { cert: /c.pem, key: /k.pem, ca: /ca.pem }
  state_dir: /s
  streams:
    a: { route: r }
    b: { route: r, allowed_sinks: ["mqtt://broker:1883"], dead_letter: sub_dlq }
`),
      [
        "c.yaml:18:8 warning CFG_DELIVERY subscriptions.streams.a: stream has no dead_letter sink: deliveries that fail for good are logged and counted only",
        "c.yaml:18:8 warning CFG_VALUE subscriptions.streams.a: allowed_sinks is empty: no subscription can be created on this stream",
      ],
    );
    // Without the stream, sub_dlq is unused: the usual warning.
    assert.ok(lines(BASE).some((l) => l.includes("warning CFG_REF sinks.sub_dlq")));
  });

  test("two streams on one route both become its targets, in order", () => {
    const { config } = lint(`${BASE}
subscriptions:
  auth: { bearer: x }
  state_dir: /s
  streams:
    a: { route: r, allowed_sinks: ["nats://n:4222"], dead_letter: sub_dlq }
    b: { route: r, allowed_sinks: ["nats://n:4222"], dead_letter: sub_dlq }
`);
    assert.deepEqual(config?.routes[0]!.to, ["out", "subscriptions:a", "subscriptions:b"]);
  });
});
