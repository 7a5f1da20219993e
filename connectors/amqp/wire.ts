/**
 * rhea's message shapes ⇔ the pure mapping's (`mapping.ts`).
 *
 * Received bodies (as rhea decodes them): a data section is a `Section` with typecode 0x75 whose
 * content is a Buffer, or an array of Buffers for several sections; 0x76 is an amqp-sequence; any
 * other body is the amqp-value itself. Sent messages are encoded here once, so the sink can check
 * their size and hand rhea the bytes.
 */
import rhea from "rhea";
import type { AmqpBody, AmqpInbound, AmqpOutbound } from "./mapping.js";

/** A decoded rhea message: its fields by name (rhea has two `Message` typings; this fits both). */
export type RheaMessage = { readonly [field: string]: unknown };

interface SectionLike {
  readonly typecode: number;
  readonly content: unknown;
  readonly multiple?: boolean;
}

function isSection(v: unknown): v is SectionLike {
  return typeof v === "object" && v !== null && typeof (v as SectionLike).typecode === "number" && "content" in v;
}

function asBytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : Buffer.alloc(0);
}

/** The body of a received message in the mapping's terms. Several data sections are concatenated. */
export function bodyOf(body: unknown): AmqpBody {
  if (body === undefined) return undefined;
  if (isSection(body)) {
    if (body.typecode === 0x76) return { kind: "sequence" };
    if (body.typecode === 0x75) {
      if (body.multiple && Array.isArray(body.content)) return { kind: "data", bytes: Buffer.concat(body.content.map(asBytes)) };
      return { kind: "data", bytes: asBytes(body.content) };
    }
  }
  return { kind: "value", value: body };
}

/** What the mapping reads from a rhea message. */
export function inboundOf(m: RheaMessage): AmqpInbound {
  const ct: unknown = m["content_type"];
  const subject: unknown = m["subject"];
  const created: unknown = m["creation_time"];
  const props: unknown = m["application_properties"];
  const annotations: unknown = m["message_annotations"];
  return {
    messageId: m["message_id"],
    contentType: typeof ct === "string" ? ct : undefined,
    subject: typeof subject === "string" ? subject : undefined,
    creationTime: created instanceof Date ? created : typeof created === "number" ? new Date(created) : undefined,
    applicationProperties: typeof props === "object" && props !== null ? (props as Record<string, unknown>) : undefined,
    messageAnnotations: typeof annotations === "object" && annotations !== null ? (annotations as Record<string, unknown>) : undefined,
    body: bodyOf(m["body"]),
  };
}

/**
 * Where the broker says how often it delivered the message: `delivery-count` + 1 when above 0,
 * 1 when `first-acquirer` is set, else unknown (RabbitMQ 3.10 sends only `first-acquirer`).
 */
export function deliveryCountOf(m: RheaMessage): number | undefined {
  const dc: unknown = m["delivery_count"];
  if (typeof dc === "number" && dc > 0) return dc + 1;
  return m["first_acquirer"] === true ? 1 : undefined;
}

/** The encoded AMQP message (header, properties, application properties, one data section). */
export function encodeOutbound(out: AmqpOutbound): Buffer {
  const msg: Record<string, unknown> = { message_id: out.messageId, durable: out.durable };
  if (out.contentType !== undefined) msg["content_type"] = out.contentType;
  if (out.applicationProperties !== undefined) {
    const props: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(out.applicationProperties)) {
      if (typeof v === "string" || typeof v === "boolean") props[k] = v;
      else if ("long" in v) props[k] = rhea.types.wrap_long(v.long);
      else props[k] = rhea.types.wrap_timestamp(v.timestamp);
    }
    msg["application_properties"] = props;
  }
  // No data: rhea writes an amqp-value null body, which the mapping reads back as no data.
  if (out.body !== undefined) {
    const b = out.body;
    msg["body"] = rhea.message.data_section(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  return rhea.message.encode(msg);
}
