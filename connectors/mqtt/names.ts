/**
 * MQTT topic rules (pure; no SDK). Used by the definition's `lint` and by the sink.
 */

/**
 * Sanitizes one substituted template value for an MQTT topic: `/`, `+`, `#` (and U+0000, which MQTT
 * forbids) become `_`, so a value can neither add levels nor wildcards; an empty value becomes `_`
 * so it never creates an empty level.
 */
export function sanitizeMqtt(value: string): string {
  if (value === "") return "_";
  return value.replace(/[/+#\u0000]/g, "_");
}

/** Checks the literal parts of a publish topic template; returns a problem or `undefined`. */
export function checkMqttPublishTemplate(template: string): string | undefined {
  const literal = template.replace(/\{[a-z0-9]+(?::-[^}]*)?\}/g, "x");
  if (/[+#]/.test(literal)) return "a publish topic cannot contain the wildcards + or #";
  if (literal.startsWith("$")) return "topics starting with $ are reserved for the broker";
  return undefined;
}

/**
 * Checks a subscription filter, optionally `$share/<group>/<filter>`. Returns a problem or `undefined`.
 * `#` must be the last level on its own; `+` must fill a whole level.
 */
export function checkMqttFilter(topic: string): string | undefined {
  let filter = topic;
  if (topic.startsWith("$share/")) {
    const rest = topic.slice("$share/".length);
    const slash = rest.indexOf("/");
    if (slash <= 0) return "a shared subscription is $share/<group>/<filter>";
    const group = rest.slice(0, slash);
    if (/[+#]/.test(group)) return "a share group name cannot contain + or #";
    filter = rest.slice(slash + 1);
    if (filter === "") return "a shared subscription needs a filter after the group";
  }
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes("#") && (l !== "#" || i !== levels.length - 1)) return "# must be the last level, on its own";
    if (l.includes("+") && l !== "+") return "+ must fill a whole level";
  }
  return undefined;
}

export function isSharedFilter(topic: string): boolean {
  return topic.startsWith("$share/");
}
