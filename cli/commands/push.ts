import type { Command } from 'commander';
import { StrataError, pushFromLocation } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface PushFlags extends RegistryFlags {
  platform?: string;
  format?: string;
}

/** `--format oci|v2s2` of push and copy. */
export function parseManifestFormat(text: string | undefined): 'oci' | 'v2s2' | undefined {
  if (text === undefined || text === 'oci') return text;
  if (text === 'v2s2' || text === 'docker') return 'v2s2';
  throw new StrataError('E_USAGE', `--format must be oci or v2s2, got "${text}"`);
}

/** `strata push SRC [DEST]`: prints the pushed digest. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('push')
      .description('push an image to a registry')
      .argument('<source>', 'a local-store name, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REF')
      .argument('[destination]', 'registry reference (docker:// optional); default: the local name of the source')
      .option('--platform <os/arch[/variant]>', "push only this platform's image of a multi-platform image")
      .option('--format <oci|v2s2>', 'v2s2: Docker schema 2 manifests, for registries that refuse OCI (the digest changes)'),
  ).action(async (source: string, destination: string | undefined, flags: PushFlags) => {
    const api = apiContext(ctx, { platform: flags.platform });
    const format = parseManifestFormat(flags.format);
    const result = await withRegistry(ctx, api, flags, (io) =>
      pushFromLocation(source, destination, api, io, { singlePlatform: flags.platform !== undefined, format }),
    );
    writeLine(ctx.stdout, result.descriptor.digest);
  });
}
