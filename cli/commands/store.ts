import type { Command } from 'commander';
import { StrataError, formatBytes, verifyStore } from '../../src/index.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

/** Store upkeep: verify (and repair). */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(program
    .command('verify')
    .description('check every blob and image of the local store; --repair fixes what it can')
    .option('--repair', 'move corrupt blobs aside, remove leftovers, pull damaged images again from where they came from'))
    .action(async (flags: RegistryFlags & { repair?: boolean }) => {
      const api = apiContext(ctx);
      const repair = flags.repair === true;
      const report = repair
        ? await withRegistry(ctx, api, flags, (io) => verifyStore(api, { repair, conn: io }))
        : await verifyStore(api, { repair });
      for (const p of report.problems) {
        const users = p.images.length ? ` (in ${p.images.join(', ')})` : '';
        writeLine(ctx.stdout, `${p.kind} ${p.subject}: ${p.detail}${users}${p.repaired ? `: ${p.repaired}` : ''}`);
      }
      writeLine(ctx.stdout, `${report.blobs} blobs (${formatBytes(report.bytes)}) and ${report.images} images checked: ${report.problems.length === 0 ? 'all good' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`}`);
      const left = report.problems.filter((p) => !p.repaired || p.repaired.includes('not repaired'));
      if (left.length > 0) {
        throw new StrataError('E_STORE_INVALID', `the store at ${api.storeRoot} has ${left.length} problem${left.length === 1 ? '' : 's'}${repair ? ' that could not be repaired' : ''}`, {
          hint: repair ? 'images that were built, not pulled, must be built again (or removed with rmi)' : 'run `strata verify --repair`',
        });
      }
    });
}
