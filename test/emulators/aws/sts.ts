/**
 * The emulated STS API (AWS query protocol: a form-encoded POST with `Action=...`, answered in XML):
 * AssumeRole issues temporary credentials that the emulator then accepts on every service (with
 * their session token, until they expire); GetCallerIdentity says whose key signed a request.
 */
import { randomBytes } from "node:crypto";
import type { KnownKey } from "./sigv4.js";
import { AwsError, xmlEscape } from "./wire.js";

const NS = "https://sts.amazonaws.com/doc/2011-06-15/";

export interface AssumedRole {
  readonly roleArn: string;
  readonly sessionName: string;
  /** Access key id of the caller that assumed the role. */
  readonly by: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

export class StsService {
  /** Every successful AssumeRole, in order. */
  readonly assumed: AssumedRole[] = [];

  constructor(
    private readonly accountId: string,
    /** Registers a temporary key with the signature checker. */
    private readonly register: (accessKeyId: string, key: KnownKey) => void,
    /** Role ARNs that may be assumed; undefined = any. */
    readonly allowedRoles: Set<string> | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  handle(action: string, form: URLSearchParams, callerKeyId: string): string {
    switch (action) {
      case "AssumeRole":
        return this.assumeRole(form, callerKeyId);
      case "GetCallerIdentity":
        return `<GetCallerIdentityResponse xmlns="${NS}"><GetCallerIdentityResult><Arn>arn:aws:iam::${this.accountId}:user/${xmlEscape(callerKeyId)}</Arn><UserId>${xmlEscape(callerKeyId)}</UserId><Account>${this.accountId}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${randomBytes(8).toString("hex")}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
      default:
        throw new AwsError(400, "InvalidAction", `Could not find operation ${action} for version 2011-06-15`);
    }
  }

  private assumeRole(form: URLSearchParams, by: string): string {
    const roleArn = form.get("RoleArn") ?? "";
    const sessionName = form.get("RoleSessionName") ?? "";
    if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(roleArn)) throw new AwsError(400, "ValidationError", "RoleArn is not a valid role ARN");
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) throw new AwsError(400, "ValidationError", "RoleSessionName is invalid");
    if (this.allowedRoles && !this.allowedRoles.has(roleArn)) {
      throw new AwsError(403, "AccessDenied", `User ${by} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`);
    }
    const duration = Number(form.get("DurationSeconds") ?? 3600);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43_200) throw new AwsError(400, "ValidationError", "DurationSeconds must be between 900 and 43200");
    const accessKeyId = `ASIA${randomBytes(8).toString("hex").toUpperCase()}`;
    const secretAccessKey = randomBytes(30).toString("base64");
    const sessionToken = randomBytes(48).toString("base64");
    const expiresAt = this.now() + duration * 1000;
    this.register(accessKeyId, { secretAccessKey, sessionToken, expiresAt });
    this.assumed.push({ roleArn, sessionName, by, accessKeyId, secretAccessKey, sessionToken });
    const roleName = roleArn.slice(roleArn.indexOf(":role/") + 6);
    return (
      `<AssumeRoleResponse xmlns="${NS}"><AssumeRoleResult>` +
      `<Credentials><AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${xmlEscape(secretAccessKey)}</SecretAccessKey>` +
      `<SessionToken>${xmlEscape(sessionToken)}</SessionToken><Expiration>${new Date(expiresAt).toISOString()}</Expiration></Credentials>` +
      `<AssumedRoleUser><Arn>arn:aws:sts::${this.accountId}:assumed-role/${xmlEscape(roleName)}/${xmlEscape(sessionName)}</Arn>` +
      `<AssumedRoleId>AROA${randomBytes(8).toString("hex").toUpperCase()}:${xmlEscape(sessionName)}</AssumedRoleId></AssumedRoleUser>` +
      `</AssumeRoleResult><ResponseMetadata><RequestId>${randomBytes(8).toString("hex")}</RequestId></ResponseMetadata></AssumeRoleResponse>`
    );
  }
}

/** An STS error in the XML shape the query protocol uses. */
export function stsErrorXml(err: AwsError): string {
  return `<ErrorResponse xmlns="${NS}"><Error><Type>${err.senderFault ? "Sender" : "Receiver"}</Type><Code>${xmlEscape(err.code)}</Code><Message>${xmlEscape(err.message)}</Message></Error><RequestId>${randomBytes(8).toString("hex")}</RequestId></ErrorResponse>`;
}
