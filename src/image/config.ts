/** Pure edits of a runtime config shared by `append`'s --set-* flags and the Dockerfile handlers. */

/** Sets or replaces `KEY` in a docker-style `KEY=VALUE` list, keeping the order of the others. */
export function setEnvEntry(env: readonly string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  return i < 0 ? [...env, entry] : env.map((e, j) => (j === i ? entry : e));
}

/**
 * `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` ⇒ ExposedPorts keys (docker's form); for anything else,
 * the reason, which the caller puts in an error of its own kind.
 */
export function exposedPortKeys(spec: string): { keys: string[] } | { invalid: string } {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec.trim());
  if (!m) return { invalid: 'expected PORT[/tcp|udp|sctp] or a range like 8000-8002' };
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || to < from) return { invalid: 'ports run from 1 to 65535, and a range from low to high' };
  const proto = (m[3] ?? 'tcp').toLowerCase();
  return { keys: Array.from({ length: to - from + 1 }, (_, i) => `${from + i}/${proto}`) };
}

/**
 * The `created` time strata writes into configs and history: SOURCE_DATE_EPOCH when given, else the
 * clock, in RFC 3339 to the second (the precision SOURCE_DATE_EPOCH has), so every command writes one format.
 */
export function createdTimestamp(sourceDateEpoch: number | undefined, now: () => Date): string {
  return (sourceDateEpoch !== undefined ? new Date(sourceDateEpoch * 1000) : now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
