import { StrataError } from '../errors/index.js';
import type { Platform } from './types.js';

/** Normalizes a platform as containerd's matcher does: amd64 aliases, arm64 ⇒ v8, arm ⇒ v7. */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === undefined) variant = 'v8';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

/** Parses `os/arch[/variant]` (or just `arch`, which takes linux). */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new StrataError('E_USAGE', `invalid platform "${text}": expected os/arch[/variant], like linux/arm64`);
  }
  const [a, b, c] = parts as [string, string | undefined, string | undefined];
  const p: Platform = b === undefined ? { os: 'linux', architecture: a } : { os: a, architecture: b };
  if (c !== undefined) p.variant = c;
  return normalizePlatform(p);
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x): x is string => !!x).join('/');
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(nodePlatform: string = process.platform, nodeArch: string = process.arch): Platform {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le' };
  const os = nodePlatform === 'win32' ? 'windows' : nodePlatform;
  return normalizePlatform({ os, architecture: arch[nodeArch] ?? nodeArch });
}

/** Whether an image for `candidate` satisfies a request for `wanted` (both normalized first). */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  if (w.variant === undefined || c.variant === undefined) return true;
  if (w.variant === c.variant) return true;
  // An arm v7 host runs v6 and v5 images; an arm64 v8.x host runs v8 (and earlier v8.y) images.
  const wn = Number(w.variant.replace(/^v/, ''));
  const cn = Number(c.variant.replace(/^v/, ''));
  if (!Number.isFinite(wn) || !Number.isFinite(cn)) return false;
  if (w.architecture === 'arm') return cn <= wn;
  return w.architecture === 'arm64' && Math.floor(wn) === 8 && Math.floor(cn) === 8 && cn <= wn;
}

/** Attestation manifests that BuildKit puts in indexes carry `unknown/unknown`; they are not images. */
export function isAttestationPlatform(p: Platform | undefined): boolean {
  return p !== undefined && p.os === 'unknown' && p.architecture === 'unknown';
}
