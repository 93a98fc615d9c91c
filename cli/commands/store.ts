import type { Command } from 'commander';
import { StrataError, formatBytes, parseDuration, parseSize, pruneStore, storeUsage, verifyStore } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

/** Store upkeep: verify (and repair), prune, df. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('verify')
      .description('check every blob and image of the local store; --repair fixes what it can')
      .option('--repair', 'move corrupt blobs aside, remove leftovers, pull damaged images again from where they came from'),
  ).action(async (flags: RegistryFlags & { repair?: boolean }) => {
    const api = apiContext(ctx);
    const repair = flags.repair === true;
    const report = repair ? await withRegistry(ctx, api, flags, (io) => verifyStore(api, { repair, conn: io })) : await verifyStore(api, { repair });
    for (const p of report.problems) {
      const users = p.images.length ? ` (in ${p.images.join(', ')})` : '';
      writeLine(ctx.stdout, `${p.kind} ${p.subject}: ${p.detail}${users}${p.repaired ? `: ${p.repaired}` : ''}`);
    }
    writeLine(
      ctx.stdout,
      `${report.blobs} blobs (${formatBytes(report.bytes)}) and ${report.images} images checked: ${report.problems.length === 0 ? 'all good' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`}`,
    );
    const left = report.problems.filter((p) => !p.repaired || p.repaired.includes('not repaired'));
    if (left.length > 0) {
      throw new StrataError(
        'E_STORE_INVALID',
        `the store at ${api.storeRoot} has ${left.length} problem${left.length === 1 ? '' : 's'}${repair ? ' that could not be repaired' : ''}`,
        {
          hint: repair ? 'images that were built, not pulled, must be built again (or removed with rmi)' : 'run `strata verify --repair`',
        },
      );
    }
  });

  program
    .command('prune')
    .description('remove build cache (never what a named image needs), least recently used first')
    .option('-a, --all', 'remove all build cache: step cache, cache mounts, context stat caches, unpacked bases, every blob no image needs')
    .option('--keep-storage <size>', 'remove least recently used cache until it takes at most SIZE (e.g. 5GB)')
    .option('--filter <until=DURATION>', 'only cache last used more than DURATION ago (e.g. until=24h)')
    .action(async (flags: { all?: boolean; keepStorage?: string; filter?: string }) => {
      let untilMs: number | undefined;
      if (flags.filter !== undefined) {
        const m = /^until=(.+)$/.exec(flags.filter);
        if (!m) throw new StrataError('E_USAGE', `--filter ${flags.filter}: the only filter is until=DURATION`);
        untilMs = parseDuration(m[1]!);
      }
      const result = await pruneStore(apiContext(ctx), {
        all: flags.all === true,
        keepStorage: flags.keepStorage !== undefined ? parseSize(flags.keepStorage) : undefined,
        untilMs,
      });
      writeLine(
        ctx.stdout,
        `Removed ${result.removedEntries} cache entr${result.removedEntries === 1 ? 'y' : 'ies'} and ${result.removedBlobs} blob${result.removedBlobs === 1 ? '' : 's'}: ${formatBytes(result.freedBytes)} freed`,
      );
    });

  program
    .command('df')
    .description('show what the local store holds: images, build cache, cache mounts')
    .option('--format <text|json>', 'output format', 'text')
    .action(async (flags: { format: string }) => {
      const usage = await storeUsage(apiContext(ctx));
      if (flags.format === 'json') return writeLine(ctx.stdout, JSON.stringify(usage, null, 2));
      const rows: Array<[string, string, number]> = [
        ['Images', `${usage.images.count} (${usage.images.blobs} blobs)`, usage.images.bytes],
        ['Build cache', `${usage.buildCache.entries} steps (${usage.buildCache.blobs} blobs)`, usage.buildCache.bytes],
        ['Cache mounts', String(usage.mounts.count), usage.mounts.bytes],
        ['Context stat caches', String(usage.contexts.count), usage.contexts.bytes],
        ['Unpacked bases', String(usage.unpacked.count), usage.unpacked.bytes],
        ['Corrupt (moved aside)', String(usage.corrupt.count), usage.corrupt.bytes],
      ];
      writeLine(ctx.stdout, `${'TYPE'.padEnd(22)}${'COUNT'.padEnd(24)}SIZE`);
      for (const [type, count, bytes] of rows) writeLine(ctx.stdout, `${type.padEnd(22)}${count.padEnd(24)}${formatBytes(bytes)}`);
    });
}
