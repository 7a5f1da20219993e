/**
 * A `ConnectorContext` for connector tests that records what the connector reports.
 */
import type { ConnectorContext } from "../../src/core/connector.js";
import { silentLogger, type Logger } from "../../src/core/logger.js";

export interface TestContext extends ConnectorContext {
  /** Every `setUp` call, in order. */
  readonly ups: boolean[];
  /** The last reported state (false before the first report). */
  readonly isUp: boolean;
  /** `countDropped` calls. */
  readonly dropped: number;
}

/** Logs to stderr when CEBRIDGE_TEST_LOG is set, else discards. */
function testLogger(id: string): Logger {
  if (!process.env["CEBRIDGE_TEST_LOG"]) return silentLogger;
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      process.stderr.write(`${level} [${id}] ${msg ?? ""} ${JSON.stringify(obj)}\n`);
    };
  const l: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => l };
  return l;
}

let contexts = 0;

/**
 * `id` defaults to a unique `test<N>`, so that connectors deriving client ids from it (MQTT
 * `cebridge-<component>-<instance_id>`) never collide: two MQTT clients with one id take the session
 * from each other in a loop.
 */
export function testContext(id = `test${++contexts}`, instanceId = `itest${process.pid}`): TestContext {
  const ups: boolean[] = [];
  let dropped = 0;
  return {
    id,
    instanceId,
    log: testLogger(id),
    setUp(up: boolean) {
      ups.push(up);
    },
    countDropped() {
      dropped++;
    },
    ups,
    get isUp() {
      return ups.length > 0 && ups[ups.length - 1] === true;
    },
    get dropped() {
      return dropped;
    },
  };
}
