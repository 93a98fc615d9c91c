import type { Command } from 'commander';
import { StrataError, appendImage, parseLayerSpec } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, collect, parseCompression, parseCompressionLevel, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface AppendFlags extends RegistryFlags {
  base?: string;
  layer: string[];
  annotation: string[];
  setEnv: string[];
  setLabel: string[];
  setCmd?: string;
  setEntrypoint?: string;
  setWorkdir?: string;
  setUser?: string;
  setExpose: string[];
  tag: string[];
  output: string[];
  platform?: string;
  compression: string;
  compressionLevel?: string;
  normalizeMtime?: boolean;
  format?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('append')
      .description('assemble an image from directories or tarballs on top of a base, without a Dockerfile')
      .option('--base <image>', 'base image: a local name, oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://REF or scratch', 'scratch')
      .option('--layer <path[:/dest]>', 'a directory (its contents, placed under /dest) or a .tar/.tar.gz used as a layer; repeatable', collect, [])
      .option('--set-env <key=value>', 'set an environment variable; repeatable', collect, [])
      .option('--set-label <key=value>', 'set a label; repeatable', collect, [])
      .option('--set-cmd <cmd>', 'CMD as a JSON array (exec form) or a string (run by /bin/sh -c)')
      .option('--set-entrypoint <cmd>', 'ENTRYPOINT as a JSON array or a string')
      .option('--set-workdir <dir>', 'working directory')
      .option('--set-user <user>', 'user (name or uid[:gid])')
      .option('--set-expose <port[/proto]>', 'expose a port; repeatable', collect, [])
      .option('-t, --tag <name>', 'name the image in the local store; repeatable', collect, [])
      .option(
        '-o, --output <dest>',
        'also write the image to oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE[:REF] or docker://REF; repeatable',
        collect,
        [],
      )
      .option('--platform <os/arch[/variant]>', 'platform of a scratch image, or which image of a multi-platform base')
      .option('--compression <gzip|zstd|none>', 'layer compression (zstd needs the zstd program and OCI media types)', 'gzip')
      .option('--compression-level <level>', 'level for new layers: gzip 0-9 (default: 6, with parts that barely compress stored), zstd 1-19 (default: 3)')
      .option('--normalize-mtime', 'set every file time to the epoch when SOURCE_DATE_EPOCH is not set')
      .option('--format <oci|docker>', "manifest format (default: the base image's, else oci)")
      .option(
        '--annotation <[type[platform]:]key=value>',
        'add an annotation (types manifest, index, manifest-descriptor, index-descriptor); repeatable',
        collect,
        [],
      ),
  ).action(async (flags: AppendFlags) => {
    const api = apiContext(ctx, { platform: flags.platform });
    const compression = parseCompression(flags.compression);
    if (flags.format !== undefined && flags.format !== 'oci' && flags.format !== 'docker') throw usage(`--format must be oci or docker, got "${flags.format}"`);
    if (compression === 'zstd' && flags.format === 'docker') throw usage('--compression zstd needs --format oci: Docker manifests have no zstd layer type');
    const result = await withRegistry(ctx, api, flags, (io) =>
      appendImage(
        {
          base: flags.base,
          layers: flags.layer.map(parseLayerSpec),
          env: flags.setEnv,
          labels: flags.setLabel,
          expose: flags.setExpose,
          ...(flags.setCmd !== undefined ? { cmd: flags.setCmd } : {}),
          ...(flags.setEntrypoint !== undefined ? { entrypoint: flags.setEntrypoint } : {}),
          ...(flags.setWorkdir !== undefined ? { workdir: flags.setWorkdir } : {}),
          ...(flags.setUser !== undefined ? { user: flags.setUser } : {}),
          tags: flags.tag,
          outputs: flags.output,
          compression,
          compressionLevel: parseCompressionLevel(flags.compressionLevel, compression),
          normalizeMtime: flags.normalizeMtime === true,
          ...(flags.format ? { format: flags.format as 'oci' | 'docker' } : {}),
          annotations: flags.annotation,
        },
        api,
        io,
      ),
    );
    writeLine(ctx.stdout, result.descriptor.digest);
  });
}

function usage(message: string): StrataError {
  return new StrataError('E_USAGE', message);
}
