import { homedir } from 'node:os';
import { StrataError, defaultStoreRoot, isCapableRoot, parsePlatform, type LayerCompression, type StrataContext } from '../src/internals.js';
import type { CliContext } from './context.js';

/** Repeatable option collector for commander. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseSourceDateEpoch(text: string | undefined, where: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text.trim())) throw new StrataError('E_USAGE', `${where} must be a whole number of seconds since 1970, got "${text}"`);
  return Number(text.trim());
}

/** The API context for a command: store root, clock, SOURCE_DATE_EPOCH, platform. */
export function apiContext(cli: CliContext, options: { platform?: string | undefined; sourceDateEpoch?: string | undefined } = {}): StrataContext {
  const epoch =
    options.sourceDateEpoch !== undefined
      ? parseSourceDateEpoch(options.sourceDateEpoch, '--source-date-epoch')
      : parseSourceDateEpoch(cli.env.SOURCE_DATE_EPOCH, 'SOURCE_DATE_EPOCH');
  return {
    storeRoot: defaultStoreRoot(cli.env, cli.env.HOME ?? homedir()),
    now: () => new Date(),
    sourceDateEpoch: epoch,
    platform: options.platform ? parsePlatform(options.platform) : undefined,
    // Root in a job container with its capabilities dropped cannot set owners: it unpacks as a rootless user does.
    privileged: cli.isRoot === true && isCapableRoot(),
    scratchDir: cli.env.TMPDIR || '/tmp',
    snapshots: parseSnapshots(cli.env.STRATA_SNAPSHOTS),
    overlay: parseOverlay(cli.env.STRATA_OVERLAY),
    signal: cli.signal,
  };
}

/** STRATA_SNAPSHOTS: how many unpacked base chains the store keeps for RUN (default 3; 0 or off: none). */
export function parseSnapshots(text: string | undefined): number {
  if (text === undefined || text === '') return 3;
  if (text === 'off') return 0;
  if (!/^\d+$/.test(text)) throw new StrataError('E_USAGE', `STRATA_SNAPSHOTS must be a number of unpacked bases to keep (0 turns them off), got "${text}"`);
  return Number(text);
}

/** STRATA_OVERLAY: `off` (or 0) copies each stage's RUN root instead of mounting an overlay over the unpacked layers. */
export function parseOverlay(text: string | undefined): boolean {
  if (text === undefined || text === '' || text === 'auto' || text === 'on' || text === '1') return true;
  if (text === 'off' || text === '0') return false;
  throw new StrataError('E_USAGE', `STRATA_OVERLAY must be off (copy RUN roots) or auto (overlayfs where it mounts), got "${text}"`);
}

/** `--compression gzip|zstd|none`. */
export function parseCompression(text: string): LayerCompression {
  if (text === 'gzip' || text === 'zstd' || text === 'none') return text;
  throw new StrataError('E_USAGE', `--compression must be gzip, zstd or none, got "${text}"`);
}

/** `--compression-level N`: for gzip 0 (stored) to 9 (smallest); for zstd 1 to 19 (smallest). */
export function parseCompressionLevel(text: string | undefined, compression: LayerCompression = 'gzip'): number | undefined {
  if (text === undefined) return undefined;
  if (compression === 'zstd') {
    const level = /^[0-9]{1,2}$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (!(level >= 1 && level <= 19))
      throw new StrataError('E_USAGE', `--compression-level must be a zstd level from 1 (fastest) to 19 (smallest), got "${text}"`);
    return level;
  }
  if (!/^[0-9]$/.test(text.trim())) {
    throw new StrataError('E_USAGE', `--compression-level must be a gzip level from 0 (store) to 9 (smallest), got "${text}"`);
  }
  return Number(text.trim());
}

export function writeLine(stream: NodeJS.WritableStream, text = ''): void {
  stream.write(`${text}\n`);
}
