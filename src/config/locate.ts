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

/** The scalar at `path`, when it is one, with whether it was written with quotes (for column maths). */
export function scalarAt(doc: Document, path: Path): { quoted: boolean; multiline: boolean } | undefined {
  const node = find(doc, path, false);
  if (!isScalar(node)) return undefined;
  const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
  const multiline = node.type === "BLOCK_FOLDED" || node.type === "BLOCK_LITERAL";
  return { quoted, multiline };
}
