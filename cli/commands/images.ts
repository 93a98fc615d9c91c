import type { Command } from 'commander';
import { copyImage, formatBytes, listImages, removeImage, tagImage } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { parseManifestFormat } from './push.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

/** The local-store commands: images, rmi, tag, copy. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('images')
    .description('list the images in the local store')
    .option('--format <text|json>', 'output format', 'text')
    .option('-q, --quiet', 'print digests only')
    .action(async (flags: { format: string; quiet?: boolean }) => {
      const images = await listImages(apiContext(ctx));
      if (flags.format === 'json') return writeLine(ctx.stdout, JSON.stringify(images, null, 2));
      if (flags.quiet) {
        for (const i of images) writeLine(ctx.stdout, i.digest);
        return;
      }
      const width = Math.max(4, ...images.map((i) => i.name.length));
      writeLine(ctx.stdout, `${'NAME'.padEnd(width)}  ${'DIGEST'.padEnd(19)}  MEDIA TYPE`);
      for (const i of images) writeLine(ctx.stdout, `${i.name.padEnd(width)}  ${i.digest.slice(0, 19)}  ${i.mediaType}`);
    });

  program
    .command('rmi')
    .description('remove images from the local store (blobs no other image uses are deleted)')
    .argument('<names...>', 'image names')
    .action(async (names: string[]) => {
      const api = apiContext(ctx);
      for (const name of names) {
        const { removed, freedBytes } = await removeImage(name, api);
        writeLine(ctx.stdout, `Untagged ${removed}${freedBytes ? ` (freed ${formatBytes(freedBytes)})` : ''}`);
      }
    });

  program
    .command('tag')
    .description('give a local-store image another name')
    .argument('<source>', 'existing local-store name or digest')
    .argument('<name>', 'new name')
    .action(async (source: string, name: string) => {
      const { digest } = await tagImage(source, name, apiContext(ctx));
      writeLine(ctx.stdout, digest);
    });

  addRegistryOptions(
    program
      .command('copy')
      .description('copy an image between the local store, OCI layouts, archives and registries')
      .argument('<source>', 'a local name, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REF')
      .argument('<destination>', 'same forms as the source')
      .option('--all-platforms', 'copy every platform of a multi-platform image')
      .option('--platform <os/arch[/variant]>', "which image of a multi-platform index (default: this host's)")
      .option('--format <oci|v2s2>', 'v2s2: write Docker schema 2 manifests over the same blobs (the digest changes)'),
  ).action(async (source: string, destination: string, flags: RegistryFlags & { allPlatforms?: boolean; platform?: string; format?: string }) => {
    const api = apiContext(ctx, { platform: flags.platform });
    const format = parseManifestFormat(flags.format);
    const descriptor = await withRegistry(ctx, api, flags, (io) =>
      copyImage(source, destination, api, { allPlatforms: flags.allPlatforms === true, format }, io),
    );
    writeLine(ctx.stdout, descriptor.digest);
  });
}
