import type { Command } from 'commander';
import { pushFromLocation } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface PushFlags extends RegistryFlags {
  platform?: string;
}

/** `strata push SRC [DEST]`: prints the pushed digest. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('push')
      .description('push an image to a registry')
      .argument('<source>', 'a local-store name, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REF')
      .argument('[destination]', 'registry reference (docker:// optional); default: the local name of the source')
      .option('--platform <os/arch[/variant]>', 'push only this platform\'s image of a multi-platform image'),
  ).action(async (source: string, destination: string | undefined, flags: PushFlags) => {
    const api = apiContext(ctx, { platform: flags.platform });
    const result = await withRegistry(ctx, api, flags, (io) => pushFromLocation(source, destination, api, io, { singlePlatform: flags.platform !== undefined }));
    writeLine(ctx.stdout, result.descriptor.digest);
  });
}
