import type { Command } from 'commander';
import { StrataError, deleteImage, imageDigest, listRepositoryTags, parseImageLocation } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

/** A bare name is a registry reference here, as for pull: these verbs talk to registries. */
function asRegistryRef(text: string): string {
  return parseImageLocation(text).transport === 'local' ? `docker://${text}` : text;
}

function parsePageSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new StrataError('E_USAGE', `--page-size must be a whole number from 1, got "${text}"`);
  return Number(text);
}

/** `strata ls`, `strata digest`, `strata delete`: the everyday registry verbs. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('ls')
      .description('list the tags of a repository (every page)')
      .argument('<repository>', 'e.g. ghcr.io/o/app, with or without docker://')
      .option('--page-size <n>', 'tags per request (the registry pages with Link headers)'),
  ).action(async (repository: string, flags: RegistryFlags & { pageSize?: string }) => {
    const api = apiContext(ctx);
    const pageSize = parsePageSize(flags.pageSize);
    const tags = await withRegistry(ctx, api, flags, (io) => listRepositoryTags(repository, io, { pageSize }));
    for (const tag of tags) writeLine(ctx.stdout, tag);
  });

  addRegistryOptions(
    program
      .command('digest')
      .description('print the digest of the manifest or index an image reference names')
      .argument('<image>', 'a registry reference (docker:// optional), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]')
      .option('--platform <os/arch[/variant]>', "the digest of this platform's manifest of an index"),
  ).action(async (image: string, flags: RegistryFlags & { platform?: string }) => {
    const api = apiContext(ctx, { platform: flags.platform });
    const digest = await withRegistry(ctx, api, flags, (io) => imageDigest(asRegistryRef(image), api, io, { platform: flags.platform !== undefined }));
    writeLine(ctx.stdout, digest);
  });

  addRegistryOptions(
    program
      .command('delete')
      .description('delete a manifest from a registry (by tag or digest; every tag naming it goes too)')
      .argument('<image>', 'registry reference, docker:// optional'),
  ).action(async (image: string, flags: RegistryFlags) => {
    const api = apiContext(ctx);
    const deleted = await withRegistry(ctx, api, flags, (io) => deleteImage(asRegistryRef(image), io));
    writeLine(ctx.stdout, `deleted ${deleted}`);
  });
}
