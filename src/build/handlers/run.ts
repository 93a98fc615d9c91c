import { mkdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { StrataError, isStrataError, wrapError } from '../../errors/index.js';
import { digestOf, digestHex } from '../../digest/index.js';
import type { RunInstruction } from '../../dockerfile/index.js';
import { executorResultClass, type RunMount, type RunRequest } from '../../exec/index.js';
import type { Platform } from '../../oci/index.js';
import { RUN_EXCLUDES, extractImageToDirectory } from '../../layer/index.js';
import { readFileSync } from 'node:fs';
import { readInHostRoot } from '../host-root.js';
import { PROXY_ARGS, expansionEnv } from '../args.js';
import { filesystemKey, stepCacheKey, valueDigests, type KeyComponents } from '../cache.js';
import { checkRunPlatform } from '../emulation.js';
import { expandInStage } from '../expand.js';
import { openRunRoot } from '../run-root.js';
import { parseMountSpec, type MountSpec } from '../mounts.js';
import type { BuildSession } from '../session.js';
import type { StageState } from '../state.js';
import { resolveExecUser } from '../users.js';
import type { CopyContext } from './copy.js';
import { bindMountSource, bindSourceDigest } from './run-binds.js';
import { commitLayerStep, dryMissed, explainMiss, layerStepWords, recordKey, replayCached } from './layer-step.js';
import { commandLine } from './metadata.js';

/**
 * RUN: the command goes to the executor in the stage's private root filesystem; what it changed
 * (compared by stat data with a snapshot taken just before) becomes the step's layer. The key
 * covers the parent image, the command, its environment and its mounts' definitions, as docker's
 * does: RUN steps are cached by what they are, not by what they read from the network.
 */
export async function runRun(state: StageState, ins: RunInstruction, session: BuildSession, cc: CopyContext): Promise<'cached' | 'done'> {
  if (session.input.explainOnly === true && dryMissed(state, ins)) return 'done';
  const line = ins.location.line;
  const warn = (m: string, w?: string): void => session.warn(m, w);
  const expand = (w: string): string => expandInStage(state, w, line, warn);
  const args = runArgs(state, ins);
  const mountSpecs = ins.mounts.map((m) => parseMountSpec(expand(m), cc.at));
  const network = networkMode(ins.network, session, cc.at);
  const config = state.image.config.config ?? {};

  // The step sees the image's Env plus the ARGs in scope that Env does not set, as docker does.
  const env = [...expansionEnv(state.args, config.Env)].map(([k, v]) => `${k}=${v}`);
  const argsInScope = [...state.args].filter(([k]) => !PROXY_ARGS.has(k) && !(config.Env ?? []).some((e) => e.startsWith(`${k}=`)));
  const createdBy = `RUN ${argsInScope.length ? `|${argsInScope.length} ${argsInScope.map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}${args.join(' ')} # strata`;
  const platform = {
    os: state.image.config.os,
    architecture: state.image.config.architecture,
    ...(state.image.config.variant ? { variant: state.image.config.variant } : {}),
  };
  const components = await runKeyComponents(state, session, cc, { args, mountSpecs, network, platform });
  const key = stepCacheKey(components);
  if (session.deps.executor.name === 'none' && session.input.explainOnly !== true) await refuseBeforeWork(state, session, args, network, cc.at);
  if (await replayCached(state, session, key, createdBy)) return 'cached';
  await explainMiss(state, session, ins, key, components);
  if (session.input.explainOnly === true) return 'done';
  checkRunPlatform(platform, cc.at);

  const root = await openRunRoot(state, session);
  // Writable bind mounts are private copies, thrown away once the step is over.
  const discards: Array<() => Promise<void>> = [];
  let committed = false;
  try {
    const mounts: RunMount[] = [];
    for (const spec of mountSpecs) {
      const mount = await resolveMount(spec, state, session, cc, env, discards);
      if (mount) mounts.push(mount);
    }
    const fsUser = userFiles(root.rootfs);
    const user = resolveExecUser(config.User || '0', fsUser.passwd, fsUser.group);
    await root.begin([...RUN_EXCLUDES, ...mounts.map((m) => m.target)]);
    const result = await session.deps.executor.run({
      rootfs: root.rootfs,
      args,
      env: [...env, ...proxyEnv(session, env)],
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      workdir: config.WorkingDir || '/',
      mounts,
      network,
      platform,
      where: cc.at,
      onOutput: (stream, chunk) => session.deps.events?.({ type: 'output', where: cc.at, stream, text: chunk.toString('utf8') }),
      ...(session.deps.signal ? { signal: session.deps.signal } : {}),
    });
    if (result.exitCode !== 0) {
      throw new StrataError('E_RUN_FAILED', `${cc.at}: RUN ${args.join(' ')} exited with code ${result.exitCode}`);
    }
    const changes = await root.capture(
      mounts.map((m) => m.target),
      user,
    );
    await commitLayerStep(state, session, key, changes, createdBy);
    committed = true;
    await recordKey(session, ins, key, components);
    return 'done';
  } catch (cause) {
    // The step's own errors name the line already; what failed below it gets the line as context.
    throw isStrataError(cause) && cause.message.startsWith(cc.at) ? cause : wrapError(cause, cc.at);
  } finally {
    // The root is released (unmounted) whatever happened; a failed step's changes are dropped.
    await root.settle(committed);
    // A copy that cannot be removed now goes with the build's temp directories.
    await Promise.all(discards.map((discard) => discard().catch(() => undefined)));
  }
}

/** Nothing can run: the none executor says so at the line before any work is done (it throws). */
async function refuseBeforeWork(state: StageState, session: BuildSession, args: string[], network: RunRequest['network'], where: string): Promise<void> {
  await session.deps.executor.run({
    rootfs: '',
    args,
    env: [],
    user: { uid: 0, gid: 0 },
    workdir: '/',
    mounts: [],
    network,
    platform: { os: state.image.config.os, architecture: state.image.config.architecture },
    where,
  });
}

interface RunKeyInput {
  args: string[];
  mountSpecs: MountSpec[];
  network: string;
  platform: Platform;
}

/**
 * What a RUN reads: the filesystem below it and the platform it runs for, the command (with the
 * shell), the ENV and ARGs it runs with, user, working directory, network, the executor's result class, and its
 * mounts: a bind mount by the content of its source, a cache mount by its id, a secret or ssh
 * mount by whether it is there (never by its content). Labels, EXPOSE, CMD and the like are not in it.
 */
async function runKeyComponents(state: StageState, session: BuildSession, cc: CopyContext, r: RunKeyInput): Promise<KeyComponents> {
  const config = state.image.config.config ?? {};
  const env = valueDigests(
    (config.Env ?? []).map((e) => {
      const eq = e.indexOf('=');
      return eq < 0 ? ([e, ''] as const) : ([e.slice(0, eq), e.slice(eq + 1)] as const);
    }),
  );
  const mounts: unknown[] = [];
  for (const m of r.mountSpecs) {
    const { source: _source, ...spec } = m;
    switch (m.type) {
      case 'bind':
        mounts.push({
          ...spec,
          source: m.source ?? null,
          content: await bindSourceDigest(m, session, cc).catch((cause: unknown) => {
            if (isStrataError(cause))
              throw new StrataError(cause.code, `${cc.at}: --mount source ${m.source ?? '/'}: ${cause.message}`, { hint: cause.hint, cause });
            throw cause;
          }),
        });
        break;
      case 'cache':
        mounts.push({ ...spec, cacheId: m.id ?? posix.resolve(config.WorkingDir || '/', m.target ?? '') });
        break;
      case 'secret': {
        const id = m.id ?? posix.basename(m.target ?? '');
        mounts.push({ ...spec, present: session.input.secrets?.[id] !== undefined });
        break;
      }
      case 'ssh':
        mounts.push({ ...spec, present: session.input.ssh?.[m.id ?? 'default'] !== undefined });
        break;
      default:
        mounts.push(spec);
    }
  }
  return {
    kind: 'RUN',
    parent: filesystemKey(state.image),
    words: {
      args: r.args,
      user: config.User || '',
      workdir: config.WorkingDir || '/',
      network: r.network,
      mounts,
      platform: r.platform,
      // What the executor changes observably, not its name: chroot, bwrap and runc as root replay each other's steps.
      executor: await executorResultClass(session.deps.executor),
      ...layerStepWords(session),
    },
    env,
    // The ARGs in scope that no ENV shadows reach the command as variables too (proxy ARGs included:
    // the command sees them).
    args: valueDigests([...state.args].filter(([k]) => !(k in env))),
  };
}

/**
 * Proxy variables the step sees and nothing records: the build's --build-arg values for them (predefined ARGs,
 * usable without an ARG line) and else the environment strata runs in, unless the step's env sets them already.
 * Like BuildKit's proxy env, they are not part of the cache key: a proxy does not change what a step makes.
 */
function proxyEnv(session: BuildSession, env: readonly string[]): string[] {
  const set = new Set(env.map((e) => e.slice(0, e.indexOf('='))));
  const out: string[] = [];
  for (const name of PROXY_ARGS) {
    if (set.has(name)) continue;
    const value = session.input.buildArgs[name] ?? session.input.proxyEnv?.[name];
    if (value !== undefined) out.push(`${name}=${value}`);
  }
  return out;
}

/** Shell form runs through the stage's SHELL; a heredoc-only command (`RUN <<EOF`) runs its body. */
function runArgs(state: StageState, ins: RunInstruction): string[] {
  const heredoc = ins.heredocs[0];
  if (ins.prependShell && heredoc && ins.args.join(' ').trim().startsWith('<<')) {
    return [...state.shell, heredoc.content];
  }
  return commandLine(state, ins.args, ins.prependShell);
}

function networkMode(flag: string | undefined, session: BuildSession, at: string): 'none' | 'host' {
  if (flag === undefined || flag === 'default') return session.input.network ?? 'host';
  if (flag === 'none' || flag === 'host') return flag;
  throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: RUN --network=${flag} is not supported; use none, host or default`);
}

function userFiles(rootfs: string): { passwd?: string; group?: string } {
  const out: { passwd?: string; group?: string } = {};
  const passwd = readInHostRoot(rootfs, '/etc/passwd');
  const group = readInHostRoot(rootfs, '/etc/group');
  if (passwd !== undefined) out.passwd = passwd;
  if (group !== undefined) out.group = group;
  return out;
}

async function resolveMount(
  spec: MountSpec,
  state: StageState,
  session: BuildSession,
  cc: CopyContext,
  env: string[],
  discards: Array<() => Promise<void>>,
): Promise<RunMount | undefined> {
  const target = posix.resolve(state.image.config.config?.WorkingDir || '/', spec.target ?? `/run/secrets/${spec.id ?? 'secret'}`);
  switch (spec.type) {
    case 'cache': {
      const id = spec.id ?? target;
      const dir = join(session.deps.store.root, 'cache', 'mounts', digestHex(digestOf(id)).slice(0, 32));
      await mkdir(dir, { recursive: true });
      // An imported cache may bring the mount's contents (--cache-to …,cache-mounts=true).
      await session.cache?.cacheMount?.(id, dir, (layer, reader) =>
        extractImageToDirectory([layer], reader, dir, { privileged: session.deps.privileged === true, signal: session.deps.signal }).then(() => undefined),
      );
      return { type: 'cache', target, source: dir, readonly: false };
    }
    case 'tmpfs':
      return { type: 'tmpfs', target };
    case 'secret': {
      const id = spec.id ?? posix.basename(target);
      const file = session.input.secrets?.[id];
      if (!file) {
        if (spec.required)
          throw new StrataError('E_BUILD', `${cc.at}: secret "${id}" is required but was not given`, {
            hint: `pass --secret id=${id},src=FILE or --secret id=${id},env=VAR`,
          });
        return undefined;
      }
      if (spec.env !== undefined) {
        env.push(`${spec.env}=${readFileSync(file, 'utf8')}`);
        if (spec.target === undefined) return undefined;
      }
      return { type: 'secret', target, source: file, readonly: true };
    }
    case 'bind': {
      const source = await bindMountSource(spec, session, cc);
      if (source.discard !== undefined) discards.push(source.discard);
      return { type: 'bind', target, source: source.path, readonly: spec.readonly };
    }
    case 'ssh': {
      const id = spec.id ?? 'default';
      const socket = session.input.ssh?.[id];
      if (!socket) {
        if (spec.required)
          throw new StrataError('E_BUILD', `${cc.at}: RUN --mount=type=ssh needs the agent "${id}"`, {
            hint: `pass --ssh ${id}[=SOCKET] (the socket defaults to $SSH_AUTH_SOCK)`,
          });
        return undefined;
      }
      // The step sees the agent at the target, and SSH_AUTH_SOCK points there, as BuildKit does.
      env.push(`SSH_AUTH_SOCK=${target}`);
      return { type: 'ssh', target, source: socket, readonly: true };
    }
  }
}
