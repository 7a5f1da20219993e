/**
 * The logging surface connectors and the engine use. It is pino's call shape (`log.info(obj, msg)`),
 * declared here so that nothing below `main.ts` depends on how logs are written.
 * Never pass a secret in `obj`: configured secret fields are redacted by the logger, but values
 * copied elsewhere are not.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that discards everything, for tests and tools. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
