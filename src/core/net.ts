/** `127.0.0.1:8081`, `[::1]:8081`, `0.0.0.0:80` → host and port (the schema already checked the form). */
export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(listen.slice(i + 1)) };
}
