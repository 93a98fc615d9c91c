import { StrataError } from '../errors/index.js';
import type { Platform } from './types.js';

/**
 * Normalizes a platform as containerd/platforms `Normalize` (normalizeArch) does, which BuildKit,
 * buildx and Docker 25+ use: amd64 aliases (v1 ⇒ none), arm64 v8 ⇒ none and 9 ⇒ v9, arm ⇒ v7.
 * So `linux/arm64` and `linux/arm64/v8` both become `{ os: linux, architecture: arm64 }`.
 */
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
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = undefined;
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
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
  const arch: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
    mips64el: 'mips64le',
  };
  const os = nodePlatform === 'win32' ? 'windows' : nodePlatform;
  return normalizePlatform({ os, architecture: arch[nodeArch] ?? nodeArch });
}

/** `vN` or `vN.M` as numbers; undefined for anything else. */
function versionOf(variant: string): { major: number; minor: number } | undefined {
  const m = /^v(\d+)(?:\.(\d+))?$/.exec(variant);
  return m ? { major: Number(m[1]), minor: Number(m[2] ?? '0') } : undefined;
}

/**
 * Whether an image for `candidate` satisfies a request for `wanted` (both normalized first),
 * following containerd's `platforms.Only` within one architecture:
 * - arm vN runs arm v5..vN;
 * - amd64 vN runs amd64 v1..vN (a missing variant is v1);
 * - arm64 v8.x runs v8.0..v8.x, and v9.x runs v9.0..v9.x and v8.0..v8.(x+5) (a missing variant is
 *   v8, so a `linux/arm64` request takes an index entry that says `variant: "v8"` and vice versa).
 * Other architectures match when the variants are equal or either side has none.
 */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  if (w.variant === c.variant) return true;
  switch (w.architecture) {
    case 'arm64':
      return arm64Runs(w.variant ?? 'v8', c.variant ?? 'v8');
    case 'amd64': {
      const wv = versionOf(w.variant ?? 'v1');
      const cv = versionOf(c.variant ?? 'v1');
      return wv !== undefined && cv !== undefined && wv.minor === 0 && cv.minor === 0 && cv.major <= wv.major;
    }
    case 'arm': {
      // normalizePlatform always gives arm a variant.
      const wv = versionOf(w.variant ?? 'v7');
      const cv = versionOf(c.variant ?? 'v7');
      return wv !== undefined && cv !== undefined && wv.minor === 0 && cv.minor === 0 && cv.major >= 5 && cv.major <= wv.major;
    }
    default:
      return w.variant === undefined || c.variant === undefined;
  }
}

function arm64Runs(wanted: string, candidate: string): boolean {
  const w = versionOf(wanted);
  const c = versionOf(candidate);
  if (!w || !c) return false;
  if (w.major === 8) return c.major === 8 && c.minor <= w.minor;
  // Armv9.x includes Armv8.(x+5); containerd's table stops at v8.9.
  if (w.major === 9) return (c.major === 9 && c.minor <= w.minor) || (c.major === 8 && c.minor <= Math.min(w.minor + 5, 9));
  return false;
}

/** Attestation manifests that BuildKit puts in indexes carry `unknown/unknown`; they are not images. */
export function isAttestationPlatform(p: Platform | undefined): boolean {
  return p !== undefined && p.os === 'unknown' && p.architecture === 'unknown';
}
