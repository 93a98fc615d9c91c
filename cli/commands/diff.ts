import type { Command } from 'commander';
import { StrataError, diffImageLocations, renderDiffText } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { escapeControls } from '../terminal-text.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface DiffFlags extends RegistryFlags {
  format: string;
  platform?: string;
}

/** `strata diff A B`: what differs between two images, and why their digests differ. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('diff')
      .description('compare two images (manifests, configs, layers, files) and say why their digests differ')
      .argument('<a>', 'an image: local name, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REF')
      .argument('<b>', 'the other image, from any of the same transports')
      .option('--format <text|json>', 'output format', 'text')
      .option('--platform <os/arch[/variant]>', "compare only this platform's images (default: every platform of an index)"),
  ).action(async (a: string, b: string, flags: DiffFlags) => {
    if (flags.format !== 'text' && flags.format !== 'json') throw new StrataError('E_USAGE', `--format must be text or json, got "${flags.format}"`);
    const api = apiContext(ctx, { platform: flags.platform });
    const diff = await withRegistry(ctx, api, flags, (io) => diffImageLocations(a, b, api, io, { singlePlatform: flags.platform !== undefined }));
    if (flags.format === 'json') writeLine(ctx.stdout, JSON.stringify(diff, null, 2));
    // Paths are file names: their control characters and bytes that are not UTF-8 are shown escaped.
    else ctx.stdout.write(escapeControls(renderDiffText(diff)));
  });
}
