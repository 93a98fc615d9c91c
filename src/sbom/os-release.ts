/** `/etc/os-release` (or `/usr/lib/os-release`): ID, VERSION_ID and PRETTY_NAME. */
export function parseOsRelease(bytes: Buffer): { id: string; versionId?: string | undefined; prettyName?: string | undefined } | undefined {
  const values = new Map<string, string>();
  for (const line of bytes.toString('utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!;
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    values.set(m[1]!, value);
  }
  const id = values.get('ID');
  if (!id) return undefined;
  return { id, versionId: values.get('VERSION_ID'), prettyName: values.get('PRETTY_NAME') };
}
