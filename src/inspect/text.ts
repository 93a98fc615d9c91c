import type { InspectReport } from './report.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

function list(values: readonly string[] | null): string {
  return values === null ? '' : JSON.stringify(values);
}

/** The human view of `strata inspect`. */
export function renderInspectText(r: InspectReport): string {
  const lines: string[] = [];
  const field = (k: string, v: string | undefined): void => {
    if (v !== undefined && v !== '') lines.push(`${`${k}:`.padEnd(14)}${v}`);
  };
  field('Name', r.name);
  field('Source', r.source);
  field('Digest', r.digest);
  field('MediaType', r.mediaType);
  if (r.manifestDigest !== r.digest) field('Manifest', `${r.manifestDigest} (${r.manifestMediaType})`);
  field('Platform', r.platform);
  field('Size', `${formatBytes(r.size)} (${r.size} bytes)`);
  field('Created', r.created);
  field('Author', r.author);
  if (r.manifests) {
    lines.push('Manifests:');
    for (const m of r.manifests) lines.push(`  ${m.digest}  ${m.platform ?? '-'}  ${formatBytes(m.size)}`);
  }
  lines.push('Config:');
  const c = r.config;
  const sub = (k: string, v: string | undefined): void => {
    if (v !== undefined && v !== '') lines.push(`  ${`${k}:`.padEnd(12)}${v}`);
  };
  for (const [i, e] of c.env.entries()) sub(i === 0 ? 'Env' : '', e);
  sub('Entrypoint', list(c.entrypoint));
  sub('Cmd', list(c.cmd));
  sub('WorkingDir', c.workingDir);
  sub('User', c.user);
  sub('Ports', c.exposedPorts.join(', '));
  sub('Volumes', c.volumes.join(', '));
  for (const [i, [k, v]] of Object.entries(c.labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .entries())
    sub(i === 0 ? 'Labels' : '', `${k}=${v}`);
  sub('StopSignal', c.stopSignal);
  if (c.healthcheck) sub('Healthcheck', JSON.stringify(c.healthcheck));
  if (c.shell) sub('Shell', JSON.stringify(c.shell));
  if (c.onBuild) for (const [i, t] of c.onBuild.entries()) sub(i === 0 ? 'OnBuild' : '', t);
  lines.push(`History (${r.history.length} steps, ${r.layers.length} layers):`);
  lines.push(`  ${'LAYER'.padEnd(12)}  ${'SIZE'.padStart(9)}  ${'CREATED'.padEnd(20)}  CREATED BY`);
  for (const h of r.history) {
    const layer = h.layer ? shortDigest(h.layer.digest) : '-';
    const size = h.layer ? formatBytes(h.layer.size) : '0 B';
    lines.push(`  ${layer.padEnd(12)}  ${size.padStart(9)}  ${(h.created ?? '').padEnd(20)}  ${h.createdBy}`);
  }
  return `${lines.join('\n')}\n`;
}
