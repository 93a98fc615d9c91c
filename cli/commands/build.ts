import { resolve } from 'node:path';
import type { Command } from 'commander';
import { StrataError, buildImage, formatBytes, familiarImageName, ioError, isRemoteContext, parseDuration } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { buildEventRenderer, type ProgressMode } from '../build-progress.js';
import { explainCacheRenderer } from '../explain-cache.js';
import { apiContext, collect, parseCompression, parseCompressionLevel, writeLine } from '../options.js';
import { skipTlsVerifyOption, withRegistry } from '../registry-io.js';
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
  cacheTtl?: string;
  executor?: string;
  progress: string;
  iidfile?: string;
  metadataFile?: string;
  sourceDateEpoch?: string;
  insecureRegistry: string[];
  caCert?: string;
  registryTimeout?: string;
  skipTlsVerify?: string[];
  registryMirror: string[];
  secret: string[];
  ssh: string[];
  network?: string;
  force?: boolean;
  ignorePath: string[];
  compressionLevel?: string;
  compression: string;
  explainCache?: boolean;
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
  // `default` is docker's name for its default, the host's network for a build.
  if (value === 'none' || value === 'host' || value === 'default') return value === 'none' ? 'none' : 'host';
  throw new StrataError('E_USAGE', `--network must be host, none or default, got "${value}"`);
}

function parseCacheTtl(text: string): number {
  try {
    return parseDuration(text);
  } catch (cause) {
    throw new StrataError('E_USAGE', `--cache-ttl: ${(cause as Error).message}`, { cause });
  }
}

export function register(program: Command, ctx: CliContext): void {
  addAttestOptions(program.command('build'))
    .description('build an image from a Dockerfile, without a daemon')
    .argument(
      '[context]',
      'build context: a directory, a git URL (URL#ref:subdir), an http(s) URL of a tar archive or Dockerfile, or - for a tar on stdin',
      '.',
    )
    .option('-f, --file <path>', 'the Dockerfile (default: CONTEXT/Dockerfile; relative to a remote context; - reads stdin)')
    .option('-t, --tag <name>', 'name the image; repeatable', collect, [])
    .option('--build-arg <key[=value]>', 'set a build-time variable; repeatable', collect, [])
    .option('--target <stage>', 'build this stage and what it needs')
    .option('--platform <os/arch[/variant]>', 'target platform')
    .option('--label <key=value>', 'set a label on the image; repeatable', collect, [])
    .option(
      '--build-context <name=value>',
      'extra context: a directory, a git URL, an http(s) tar URL, docker-image://REF or oci-layout://DIR[:TAG]; repeatable',
      collect,
      [],
    )
    .option('-o, --output <spec>', 'type=image|registry|oci|docker|local|tar[,dest=PATH]; repeatable', collect, [])
    .option('--push', 'push the image (same as --output type=registry)')
    .option('--no-cache', 'do not use the build cache')
    .option('--cache-from <spec>', 'import a build cache: type=registry,ref=REF (or just REF) or type=local,src=DIR; repeatable', collect, [])
    .option('--cache-to <spec>', 'export the build cache: type=registry,ref=REPO:TAG or type=local,dest=DIR, with mode=min|max')
    .option('--cache-ttl <duration>', 'run again any cached step made longer ago than this (24h, 7d, 2w), from any cache (default: no bound)')
    .option(
      '--executor <name>',
      "what runs RUN steps: auto, bwrap, runc, crun, chroot, proot, inplace, none or command:PATH (default: the config file's, else auto: the most isolated that works here)",
    )
    .option('--secret <id=ID,src=FILE|env=VAR>', 'a secret RUN --mount=type=secret can read; repeatable', collect, [])
    .option('--ssh <default|ID[=SOCKET]>', 'an ssh agent RUN --mount=type=ssh can use (default: $SSH_AUTH_SOCK); repeatable', collect, [])
    .option('--network <none|host>', 'network for RUN steps (default host, as in docker)')
    .option('--ignore-path <path>', 'inplace executor: a path of / to leave alone; repeatable', collect, [])
    .option('--force', 'inplace executor: run even where no container is seen')
    .option('--compression <gzip|zstd|none>', 'layer compression (zstd needs the zstd program and gives OCI media types)', 'gzip')
    .option('--compression-level <level>', 'level for new layers: gzip 0-9 (default: 6, with parts that barely compress stored), zstd 1-19 (default: 3)')
    .option('--progress <mode>', 'auto, plain, tty, json or quiet', 'auto')
    .option('--explain-cache', 'only report which steps would miss the cache and why; run and write nothing')
    .option('--iidfile <file>', 'write the image ID (config digest) to a file')
    .option('--metadata-file <file>', 'write build result metadata (digests, names) as JSON')
    .option('--source-date-epoch <seconds>', 'fix timestamps for a reproducible image (default: $SOURCE_DATE_EPOCH)')
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP to this registry (loopback registries are allowed anyway); repeatable', collect, [])
    .option('--ca-cert <file>', 'PEM file of CA certificates to trust for registries with a private CA')
    .option(
      '--registry-timeout <seconds>',
      'how long a registry request may wait to connect, for its response and inside a body: SECONDS, or connect=S,headers=S,idle=S (default 30 each)',
    )
    .addOption(skipTlsVerifyOption())
    .option('--registry-mirror <host[:port]>', 'pull docker.io base images through this mirror first; repeatable', collect, [])
    .action(async (contextArg: string, flags: BuildFlags) => {
      if (!['auto', 'plain', 'tty', 'json', 'quiet'].includes(flags.progress))
        throw new StrataError('E_USAGE', `--progress must be auto, plain, tty, json or quiet, got "${flags.progress}"`);
      const started = Date.now();
      const compression = parseCompression(flags.compression);
      const config = readConfigFile(ctx);
      const api = apiContext(ctx, { platform: flags.platform, sourceDateEpoch: flags.sourceDateEpoch });
      const remoteContext = isRemoteContext(contextArg) ? contextArg : undefined;
      if (remoteContext === '-' && flags.file === '-')
        throw new StrataError('E_USAGE', 'the context (-) and the Dockerfile (-f -) cannot both come from stdin');
      if (remoteContext === '-' && (ctx.stdin as { isTTY?: boolean }).isTTY === true) {
        throw new StrataError('E_USAGE', 'the context is - but stdin is a terminal', { hint: 'pipe a tar archive: tar -C DIR -c . | strata build -' });
      }
      const contextDir = resolve(ctx.cwd, remoteContext === undefined ? contextArg : '.');
      let dockerfileText: string | undefined;
      // A remote context's -f names a file inside it, as docker takes it.
      let dockerfile =
        flags.file === undefined ? undefined : flags.file === '-' ? 'Dockerfile' : remoteContext !== undefined ? flags.file : resolve(ctx.cwd, flags.file);
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
      const explain = flags.explainCache === true;
      const render = explain ? explainCacheRenderer(ctx.stdout, ctx.stderr) : buildEventRenderer(flags.progress as ProgressMode, ctx.stderr, ctx.isTty);
      const registryFlags = {
        insecureRegistry: [...flags.insecureRegistry, ...(config.insecureRegistries ?? [])],
        progress: flags.progress,
        ...(flags.caCert !== undefined ? { caCert: flags.caCert } : {}),
        ...(flags.registryTimeout !== undefined ? { registryTimeout: flags.registryTimeout } : {}),
        ...(flags.skipTlsVerify !== undefined ? { skipTlsVerify: flags.skipTlsVerify } : {}),
        registryMirror: flags.registryMirror,
      };
      const result = await withRegistry(ctx, api, registryFlags, (io) =>
        buildImage(
          {
            contextDir,
            contextSource: remoteContext,
            stdin: ctx.stdin,
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
            ...(flags.cacheTtl !== undefined ? { cacheTtl: parseCacheTtl(flags.cacheTtl) } : {}),
            cwd: ctx.cwd,
            strataVersion: program.version(),
            executor: flags.executor ?? config.executor ?? 'auto',
            ...(config.cacheLimit !== undefined ? { cacheLimit: config.cacheLimit } : {}),
            force: flags.force === true,
            // strata's own files: the program and the Node running it are never the image's.
            ignorePaths: [...flags.ignorePath.map((p) => resolve(ctx.cwd, p)), ...(ctx.programDir !== undefined ? [ctx.programDir] : [])],
            secrets: flags.secret,
            ssh: flags.ssh,
            env: ctx.env,
            ...(flags.network !== undefined ? { network: parseNetwork(flags.network) } : {}),
            compression,
            compressionLevel: parseCompressionLevel(flags.compressionLevel, compression),
            iidFile: flags.iidfile === undefined ? undefined : resolve(ctx.cwd, flags.iidfile),
            metadataFile: flags.metadataFile === undefined ? undefined : resolve(ctx.cwd, flags.metadataFile),
            events: render,
            explainCache: explain,
            ...attestOptions(flags),
          },
          api,
          io,
        ),
      );
      if (explain) {
        writeLine(ctx.stdout, `${result.steps.cached}/${result.steps.total} steps cached`);
        return;
      }
      if (flags.progress !== 'quiet') {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        ctx.stderr.write(
          `=> built ${result.manifest.digest} (${formatBytes(result.size)}, ${result.steps.cached}/${result.steps.total} steps cached, ${seconds}s)\n`,
        );
        for (const w of result.written) ctx.stderr.write(`=> wrote ${w}\n`);
        if (result.registryBase && result.baseLayersRead === 0) ctx.stderr.write('=> registry-level build: no base layer was downloaded\n');
        if (result.defaultName) ctx.stderr.write(`=> no -t given: named ${familiarImageName(result.names[0]!)} after the context directory\n`);
      }
      writeLine(ctx.stdout, result.manifest.digest);
    });
}
