import type { Command } from 'commander';
import { copyImage, pullToStore } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface PullFlags extends RegistryFlags {
  platform?: string;
  allPlatforms?: boolean;
  output?: string;
}

/** `strata pull REF`: into the local store, or with -o to any location. Prints the digest. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('pull')
      .description('pull an image from a registry into the local store (or, with -o, to any location)')
      .argument('<ref>', 'image reference, e.g. alpine:3.20, ghcr.io/o/app@sha256:..., with or without docker://')
      .option('--platform <os/arch[/variant]>', "which image of a multi-platform index (default: this host's)")
      .option('--all-platforms', 'pull every platform of a multi-platform image')
      .option('-o, --output <dest>', 'write to oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE[:REF], docker://REF or a local name instead'),
  ).action(async (ref: string, flags: PullFlags) => {
    const api = apiContext(ctx, { platform: flags.platform });
    const source = ref.startsWith('docker://') ? ref : `docker://${ref}`;
    const digest = await withRegistry(ctx, api, flags, async (io) => {
      if (flags.output !== undefined) return (await copyImage(source, flags.output, api, { allPlatforms: flags.allPlatforms === true }, io)).digest;
      const pulled = await pullToStore(source, api, io, { allPlatforms: flags.allPlatforms === true });
      return pulled.descriptor.digest;
    });
    writeLine(ctx.stdout, digest);
  });
}
