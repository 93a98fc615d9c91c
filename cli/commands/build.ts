import { resolve } from 'node:path';
import type { Command } from 'commander';
import { StrataError, buildImage, formatBytes, familiarImageName, ioError } from '../../src/index.js';
import type { CliContext } from '../context.js';
import { buildEventRenderer, type ProgressMode } from '../build-progress.js';
import { apiContext, collect, parseCompression, parseCompressionLevel, writeLine } from '../options.js';
import { withRegistry } from '../registry-io.js';
import { readConfigFile } from '../config.js';
import { addAttestOptions, attestOptions, type AttestFlags } from './build-attest.js';

interface BuildFlags extends AttestFlags {
  file?: string;
  tag: string[];
  buildArg: string[];
  target?: string;
  platform?: string;
  label: string[];
  buildContext: string[];
  output: string[];
  push?: boolean;
  cache?: boolean;
  cacheFrom: string[];
  cacheTo?: string;
  executor?: string;
  progress: string;
  iidfile?: string;
  metadataFile?: string;
  sourceDateEpoch?: string;
  insecureRegistry: string[];
  caCert?: string;
  secret: string[];
  ssh: string[];
  network?: string;
  compressionLevel?: string;
  compression: string;
}

function keyValues(values: readonly string[], flag: string, env: NodeJS.ProcessEnv, allowBare: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq < 0 && allowBare) {
      // `--build-arg NAME` takes the value from the environment, as docker does.
      const fromEnv = env[v];
      if (fromEnv !== undefined) out[v] = fromEnv;
      continue;
    }
    if (eq <= 0) throw new StrataError('E_USAGE', `${flag} expects KEY=VALUE, got "${v}"`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function parseNetwork(value: string): 'none' | 'host' {
  if (value === 'none' || value === 'host' || value === 'default') return value === 'host' ? 'host' : 'none';
  throw new StrataError('E_USAGE', `--network must be none or host, got "${value}"`);
}

export function register(program: Command, ctx: CliContext): void {
  addAttestOptions(program
    .command('build'))
    .description('build an image from a Dockerfile, without a daemon')
    .argument('[context]', 'build context directory', '.')
    .option('-f, --file <path>', 'the Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)')
    .option('-t, --tag <name>', 'name the image; repeatable', collect, [])
    .option('--build-arg <key[=value]>', 'set a build-time variable; repeatable', collect, [])
    .option('--target <stage>', 'build this stage and what it needs')
    .option('--platform <os/arch[/variant]>', 'target platform')
    .option('--label <key=value>', 'set a label on the image; repeatable', collect, [])
    .option('--build-context <name=value>', 'extra context: a directory, docker-image://REF or oci-layout://DIR[:TAG]; repeatable', collect, [])
    .option('-o, --output <spec>', 'type=image|registry|oci|docker|local|tar[,dest=PATH]; repeatable', collect, [])
    .option('--push', 'push the image (same as --output type=registry)')
    .option('--no-cache', 'do not use the build cache')
    .option('--cache-from <spec>', 'import a build cache: type=registry,ref=REF (or just REF) or type=local,src=DIR; repeatable', collect, [])
    .option('--cache-to <spec>', 'export the build cache: type=registry,ref=REPO:TAG or type=local,dest=DIR, with mode=min|max')
    .option('--executor <name>', 'what runs RUN steps: none, chroot, bwrap, runc, crun or command:PATH (default: the config file\'s, else none)')
    .option('--secret <id=ID,src=FILE|env=VAR>', 'a secret RUN --mount=type=secret can read; repeatable', collect, [])
    .option('--ssh <default|ID[=SOCKET]>', 'an ssh agent RUN --mount=type=ssh can use (default: $SSH_AUTH_SOCK); repeatable', collect, [])
    .option('--network <none|host>', 'network for RUN steps (default none)')
    .option('--compression <gzip|zstd|none>', 'layer compression (zstd needs the zstd program and gives OCI media types)', 'gzip')
    .option('--compression-level <level>', 'level for new layers: gzip 0-9 (default: 6, with parts that barely compress stored), zstd 1-19 (default: 3)')
    .option('--progress <mode>', 'auto, plain, tty, json or quiet', 'auto')
    .option('--iidfile <file>', 'write the image ID (config digest) to a file')
    .option('--metadata-file <file>', 'write build result metadata (digests, names) as JSON')
    .option('--source-date-epoch <seconds>', 'fix timestamps for a reproducible image (default: $SOURCE_DATE_EPOCH)')
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP to this registry (loopback registries are allowed anyway); repeatable', collect, [])
    .option('--ca-cert <file>', 'PEM file of CA certificates to trust for registries with a private CA')
    .action(async (contextArg: string, flags: BuildFlags) => {
      if (!['auto', 'plain', 'tty', 'json', 'quiet'].includes(flags.progress)) throw new StrataError('E_USAGE', `--progress must be auto, plain, tty, json or quiet, got "${flags.progress}"`);
      const started = Date.now();
      const compression = parseCompression(flags.compression);
      const config = readConfigFile(ctx);
      const api = apiContext(ctx, { platform: flags.platform, sourceDateEpoch: flags.sourceDateEpoch });
      const contextDir = resolve(ctx.cwd, contextArg);
      let dockerfileText: string | undefined;
      let dockerfile = flags.file === undefined ? undefined : flags.file === '-' ? 'Dockerfile' : resolve(ctx.cwd, flags.file);
      if (flags.file === '-') {
        const chunks: Buffer[] = [];
        try {
          for await (const chunk of ctx.stdin) chunks.push(chunk as Buffer);
        } catch (cause) {
          throw ioError('read Dockerfile from', 'stdin', cause);
        }
        dockerfileText = Buffer.concat(chunks).toString('utf8');
        dockerfile = 'Dockerfile';
      }
      const render = buildEventRenderer(flags.progress as ProgressMode, ctx.stderr, ctx.isTty);
      const registryFlags = { insecureRegistry: [...flags.insecureRegistry, ...(config.insecureRegistries ?? [])], progress: flags.progress, ...(flags.caCert !== undefined ? { caCert: flags.caCert } : {}) };
      const result = await withRegistry(ctx, api, registryFlags, (io) => buildImage(
        {
          contextDir,
          dockerfile,
          dockerfileText,
          tags: flags.tag,
          buildArgs: keyValues(flags.buildArg, '--build-arg', ctx.env, true),
          target: flags.target,
          platform: flags.platform,
          labels: keyValues(flags.label, '--label', ctx.env, false),
          buildContexts: keyValues(flags.buildContext, '--build-context', ctx.env, false),
          outputs: flags.output,
          push: flags.push === true,
          noCache: flags.cache === false,
          cacheFrom: flags.cacheFrom,
          cacheTo: flags.cacheTo,
          cwd: ctx.cwd,
          strataVersion: program.version(),
          executor: flags.executor ?? config.executor ?? 'none',
          secrets: flags.secret,
          ssh: flags.ssh,
          env: ctx.env,
          ...(flags.network !== undefined ? { network: parseNetwork(flags.network) } : {}),
          compression,
          compressionLevel: parseCompressionLevel(flags.compressionLevel, compression),
          iidFile: flags.iidfile === undefined ? undefined : resolve(ctx.cwd, flags.iidfile),
          metadataFile: flags.metadataFile === undefined ? undefined : resolve(ctx.cwd, flags.metadataFile),
          events: render,
          ...attestOptions(flags),
        },
        api,
        io,
      ));
      if (flags.progress !== 'quiet') {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        ctx.stderr.write(`=> built ${result.manifest.digest} (${formatBytes(result.size)}, ${result.steps.cached}/${result.steps.total} steps cached, ${seconds}s)\n`);
        for (const w of result.written) ctx.stderr.write(`=> wrote ${w}\n`);
        if (result.registryBase && result.baseLayersRead === 0) ctx.stderr.write('=> registry-level build: no base layer was downloaded\n');
        if (result.defaultName) ctx.stderr.write(`=> no -t given: named ${familiarImageName(result.names[0]!)} after the context directory\n`);
      }
      writeLine(ctx.stdout, result.manifest.digest);
    });
}
