import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { StrataError, exportRootfs } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface ExportFlags extends RegistryFlags {
  output?: string;
  platform?: string;
}

/** `strata export IMAGE -o rootfs.tar`: the flattened root filesystem, whiteouts applied. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('export')
      .description("write an image's flattened root filesystem (whiteouts applied) as one tar")
      .argument('<image>', 'a local name, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REF')
      .option('-o, --output <file>', 'the tar to write; - for standard output')
      .option('--platform <os/arch[/variant]>', "which image of a multi-platform index (default: this host's)"),
  ).action(async (image: string, flags: ExportFlags) => {
    if (flags.output === undefined) throw new StrataError('E_USAGE', 'export needs -o FILE (or -o - for standard output)');
    const api = apiContext(ctx, { platform: flags.platform });
    const toStdout = flags.output === '-';
    if (toStdout && ctx.isTty) throw new StrataError('E_USAGE', 'refusing to write a tar to a terminal', { hint: 'redirect standard output, or give -o FILE' });
    const output: string | Writable = toStdout ? (ctx.stdout as Writable) : resolve(ctx.cwd, flags.output);
    const stats = await withRegistry(ctx, api, toStdout ? { ...flags, progress: 'quiet' } : flags, (io) => exportRootfs(image, output, api, io));
    for (const link of stats.droppedLinks) ctx.stderr.write(`WARNING: ${link} is a hard link to a file a later layer replaced; left out\n`);
  });
}
