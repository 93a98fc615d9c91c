import type { FileChange } from './files.js';
import type { FieldChange, ImageDiff, PlatformDiff } from './image-diff.js';

/** The human report of `strata diff`: the two images, then per platform what differs, then why. */
export function renderDiffText(diff: ImageDiff, options: { maxFiles?: number } = {}): string {
  const maxFiles = options.maxFiles ?? 200;
  const lines: string[] = [];
  lines.push(`A: ${diff.a.name} (${diff.a.digest})`);
  lines.push(`B: ${diff.b.name} (${diff.b.digest})`);
  if (diff.identical) {
    lines.push('identical');
    return `${lines.join('\n')}\n`;
  }
  for (const f of diff.index) lines.push(`index ${field(f)}`);
  for (const p of diff.onlyInA) lines.push(`platform ${p}: only in A`);
  for (const p of diff.onlyInB) lines.push(`platform ${p}: only in B`);
  for (const p of diff.platforms) lines.push(...platformLines(p, maxFiles));
  lines.push('why:');
  for (const reason of diff.reasons) lines.push(`  ${reason}`);
  return `${lines.join('\n')}\n`;
}

function platformLines(p: PlatformDiff, maxFiles: number): string[] {
  const lines = [`platform ${p.platform}:${p.identical ? ' identical' : ''}`];
  if (p.identical) return lines;
  lines.push(`  manifest ${short(p.a.manifest)} vs ${short(p.b.manifest)}`);
  for (const f of p.manifest) lines.push(`    ${field(f)}`);
  if (p.config.length > 0) lines.push(`  config ${short(p.a.config)} vs ${short(p.b.config)}`);
  for (const f of p.config) lines.push(...keyed(f).map((l) => `    ${l}`));
  lines.push('  layers');
  for (const l of p.layers) {
    const what =
      l.verdict === 'same'
        ? 'same'
        : l.verdict === 'same-content'
          ? 'same content, different compression'
          : l.verdict === 'only-a'
            ? 'only in A'
            : l.verdict === 'only-b'
              ? 'only in B'
              : 'different';
    const digests = l.verdict === 'same' ? short(l.a?.digest) : `${short(l.a?.digest)} vs ${short(l.b?.digest)}`;
    lines.push(`    ${l.layer}: ${what} (${digests})`);
  }
  if (p.files !== undefined) {
    lines.push(p.files.length === 0 ? '  files: the same' : `  files (${p.files.length} differ)`);
    for (const f of p.files.slice(0, maxFiles)) lines.push(`    ${fileLine(f)}`);
    if (p.files.length > maxFiles) lines.push(`    … ${p.files.length - maxFiles} more (--format json lists them all)`);
  }
  return lines;
}

function fileLine(f: FileChange): string {
  if (f.change === 'added') return `+ ${f.path}`;
  if (f.change === 'removed') return `- ${f.path}`;
  const details = (f.fields ?? []).map((x) => {
    switch (x) {
      case 'mode':
        return `mode ${f.a?.mode} -> ${f.b?.mode}`;
      case 'owner':
        return `owner ${f.a?.uid}:${f.a?.gid} -> ${f.b?.uid}:${f.b?.gid}`;
      case 'mtime':
        return `mtime ${f.a?.mtime} -> ${f.b?.mtime}`;
      case 'link':
        return `link ${f.a?.linkname} -> ${f.b?.linkname}`;
      case 'type':
        return `type ${f.a?.type} -> ${f.b?.type}`;
      case 'content':
        return `content (${f.a?.size} -> ${f.b?.size} bytes)`;
      default:
        return x;
    }
  });
  return `~ ${f.path}: ${details.join(', ')}`;
}

/** Maps (Labels) and KEY=VALUE lists (Env) key by key; other fields whole. */
function keyed(f: FieldChange): string[] {
  const a = asMap(f.a);
  const b = asMap(f.b);
  if (a === undefined || b === undefined) return [field(f)];
  const lines: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (x === y) continue;
    if (x === undefined) lines.push(`${f.field}: + ${key}=${y}`);
    else if (y === undefined) lines.push(`${f.field}: - ${key}=${x}`);
    else lines.push(`${f.field}: ~ ${key}: ${value(x)} -> ${value(y)}`);
  }
  return lines.length > 0 ? lines : [field(f)];
}

function asMap(v: unknown): Map<string, string> | undefined {
  if (v === undefined) return new Map();
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === 'string' && x.includes('='))) return undefined;
    return new Map(v.map((x: string) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
  }
  if (typeof v === 'object' && v !== null) return new Map(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]));
  return undefined;
}

function field(f: FieldChange): string {
  return `${f.field}: ${value(f.a)} -> ${value(f.b)}`;
}

function value(v: unknown): string {
  if (v === undefined) return '(none)';
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function short(digest: string | undefined): string {
  return digest === undefined ? '-' : digest.replace(/^sha256:/, '').slice(0, 12);
}
