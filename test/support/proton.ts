/**
 * Runs `proton_peer.py` (Apache Qpid Proton, Debian `python3-qpid-proton`): an AMQP 1.0 client that
 * shares no code with rhea, for interop tests in both directions. Missing Proton fails the test with
 * an install hint (DESIGN §9: never skip).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./daemon.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = join(REPO_ROOT, "test", "support", "proton_peer.py");
const HINT = "install Qpid Proton with: apt-get install -y python3-qpid-proton";

/** An application-property value with its AMQP type, as the peer reports or takes it. */
export interface TypedValue {
  readonly type: string;
  readonly value: unknown;
}

export interface ProtonMessage {
  readonly id: string | null;
  readonly durable: boolean;
  readonly content_type: string | null;
  /** `symbol`, as the AMQP properties section defines content-type. */
  readonly content_type_type: string | null;
  readonly properties: Record<string, TypedValue>;
  readonly body: { readonly type: string; readonly value: unknown; readonly inferred?: boolean } | null;
}

export interface ProtonOutgoing {
  readonly id?: string;
  readonly content_type?: string;
  readonly properties?: Record<string, TypedValue>;
  readonly body_base64?: string;
}

function run(args: string[], input?: string): Promise<string> {
  if (!existsSync(PYTHON)) return Promise.reject(new Error(`${PYTHON} not found; ${HINT}`));
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [SCRIPT, ...args], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const missing = /No module named 'proton'/.test(stderr);
        reject(new Error(missing ? `Qpid Proton for Python is missing; ${HINT}` : `proton_peer ${args[0]} failed: ${err.message}\n${stderr}`));
      } else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Receives `count` messages from `address` with Proton, accepting each. */
export async function protonReceive(url: string, address: string, count: number): Promise<ProtonMessage[]> {
  const out = await run(["receive", url, address, String(count)]);
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as ProtonMessage);
}

/** Sends messages to `address` with Proton (each waits for the broker's outcome). */
export async function protonSend(url: string, address: string, messages: readonly ProtonOutgoing[]): Promise<void> {
  await run(["send", url, address], JSON.stringify(messages));
}
