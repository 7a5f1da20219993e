/**
 * `cebridge run --watch`: notices when the config file's content changes. The file is polled
 * (`fs.watchFile`, every `intervalMs`) rather than watched with inotify, because the usual ways a
 * config gets replaced — an editor's write-and-rename, a Kubernetes ConfigMap's symlink swap, a
 * bind mount updated from outside — keep the path but change the inode or its target, which path
 * polling follows and a watch on the old inode does not. Only a change of content counts (touching
 * the file does nothing). `${file:...}` secrets are not watched: send SIGHUP after rotating one.
 */
import { createHash } from "node:crypto";
import { readFileSync, unwatchFile, watchFile } from "node:fs";

/** Calls `onChange` after each change of `file`'s content. Returns a function that stops watching. */
export function watchConfigFile(file: string, onChange: () => void, intervalMs = 500): () => void {
  let last = digest(file);
  const listener = () => {
    const now = digest(file);
    // Missing for a moment (replaced without a rename): wait for it to come back.
    if (now === undefined || now === last) return;
    last = now;
    onChange();
  };
  watchFile(file, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}

function digest(file: string): string | undefined {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch {
    return undefined;
  }
}
