/**
 * Error and value helpers shared by the emulated services, in the shapes the SDK parses
 * (docs/clouds.md §1.2, §1.3): AWS JSON errors carry `__type` (+ `message`); SQS, being
 * query-compatible, adds `x-amzn-query-error: <code>;Sender|Receiver`; STS answers in XML.
 */

/** An error the emulator answers with. */
export class AwsError extends Error {
  constructor(
    /** HTTP status. */
    readonly status: number,
    /** The shape name that goes into `__type` (`ThrottlingException`, `QueueDoesNotExist`). */
    readonly code: string,
    message: string,
    /** SQS only: the query-protocol code for `x-amzn-query-error` (`AWS.SimpleQueueService.NonExistentQueue`). */
    readonly queryCode?: string,
    readonly senderFault = status < 500,
  ) {
    super(message);
  }
}

export function validation(message: string): AwsError {
  return new AwsError(400, "ValidationException", message);
}

/** An SQS error: `code` is the shape, `queryCode` the legacy code (defaults to the shape). */
export function sqsError(status: number, code: string, message: string, queryCode = code): AwsError {
  return new AwsError(status, code, message, queryCode);
}

export function sqsInvalidParameter(message: string): AwsError {
  return sqsError(400, "InvalidParameterValueException", message, "InvalidParameterValue");
}

export function sqsMissingParameter(message: string): AwsError {
  return sqsError(400, "MissingParameter", message, "MissingParameter");
}

/** Reads a required string member. */
export function str(o: Record<string, unknown>, key: string, err: (m: string) => AwsError): string {
  const v = o[key];
  if (typeof v !== "string" || v === "") throw err(`The request must contain the parameter ${key}.`);
  return v;
}

export function optInt(o: Record<string, unknown>, key: string, min: number, max: number, err: (m: string) => AwsError): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw err(`Value ${JSON.stringify(v)} for parameter ${key} is invalid. Reason: must be between ${min} and ${max}.`);
  }
  return v;
}

/** Characters SQS accepts in a body or attribute value: #x9 #xA #xD #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF. */
export function hasOnlySqsCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd)) continue;
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return false;
  }
  return true;
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
