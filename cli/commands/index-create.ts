import type { Command } from 'commander';
import { createIndex } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, collect, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface IndexCreateFlags extends RegistryFlags {
  tag: string;
  annotation: string[];
  append?: boolean;
}

/** `strata index create -t TARGET SRC...`: buildx `imagetools create`, blobs mounted, never downloaded. */
export function register(program: Command, ctx: CliContext): void {
  const index = program.command('index').description('assemble image indexes in a registry');
  addRegistryOptions(
    index
      .command('create')
      .description('combine images (one per platform, built separately) into one index in a registry; blobs are mounted, never downloaded')
      .argument('[sources...]', 'images or indexes in a registry (docker:// optional)')
      .requiredOption('-t, --tag <target>', 'where the index goes: REGISTRY/REPOSITORY:TAG')
      .option('--annotation <[type[platform]:]key=value>', 'annotation on the index (index:) or its entries (manifest-descriptor:); repeatable', collect, [])
      .option('--append', 'add to the index (or image) the target already names'),
  ).action(async (sources: string[], flags: IndexCreateFlags) => {
    const api = apiContext(ctx, {});
    const result = await withRegistry(ctx, api, flags, (io) =>
      createIndex({ target: flags.tag, sources, annotations: flags.annotation, append: flags.append === true }, io),
    );
    writeLine(ctx.stdout, result.descriptor.digest);
  });
}
