/**
 * Maps a path in the parsed value back to a line and column in the YAML text.
 */
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from "yaml";

export type Path = readonly (string | number)[];

export interface Position {
  readonly line: number;
  readonly col: number;
}

/** Finds the node at `path`; when `key` is set, the key node of that map entry instead of its value. */
function find(doc: Document, path: Path, key: boolean): Node | undefined {
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) return undefined;
      if (key && i === path.length - 1) return pair.key as Node;
      node = pair.value;
    } else if (isSeq(node)) {
      node = node.items[seg as number];
    } else {
      return undefined;
    }
  }
  return node as Node | undefined;
}

/**
 * The position of the deepest node on `path` that exists (so a missing key points at its parent).
 * `key: true` points at the key of the last segment (used for unknown keys).
 */
export function locate(doc: Document, lines: LineCounter, path: Path, opts: { key?: boolean; offset?: number } = {}): Position {
  for (let n = path.length; n >= 0; n--) {
    const node = find(doc, path.slice(0, n), opts.key === true && n === path.length);
    if (node?.range) {
      const at = node.range[0] + (n === path.length ? (opts.offset ?? 0) : 0);
      return lines.linePos(at);
    }
  }
  return { line: 1, col: 1 };
}

/**
 * Where a character of a scalar's value stands in the file: `offset` is an index into the value;
 * the result is an index into the scalar's source text (counted from its first character, quotes
 * included), or undefined when the scalar spans lines or is a block scalar (folding makes it
 * ambiguous). Undoes `''` in single quotes and backslash escapes in double quotes.
 */
export function valueOffsetInSource(doc: Document, path: Path, text: string, offset: number): number | undefined {
  const node = find(doc, path, false);
  if (!isScalar(node) || !node.range || typeof node.value !== "string") return undefined;
  const raw = text.slice(node.range[0], node.range[1]);
  if (raw.includes("\n")) return undefined;
  if (node.type === "PLAIN") return offset <= raw.length ? offset : undefined;
  if (node.type !== "QUOTE_SINGLE" && node.type !== "QUOTE_DOUBLE") return undefined;
  let i = 1;
  for (let v = 0; v < offset; v++) {
    if (i >= raw.length - 1) return undefined;
    if (node.type === "QUOTE_SINGLE") i += raw.startsWith("''", i) ? 2 : 1;
    else if (raw[i] !== "\\") i += 1;
    else i += ESCAPE_LENGTH[raw[i + 1]!] ?? 2;
  }
  return i;
}

/** Source length of the double-quoted escapes longer than two characters. */
const ESCAPE_LENGTH: Record<string, number> = { x: 4, u: 6, U: 10 };
