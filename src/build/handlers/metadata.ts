import { StrataError } from '../../errors/index.js';
import type { DockerfileHealthcheck, Instruction } from '../../dockerfile/index.js';
import { exposedPortKeys } from '../../image/index.js';
import type { ContainerConfig, HealthConfig } from '../../oci/index.js';
import { expandInStage, expandWordsInStage, type WarnFn } from '../expand.js';
import { DEFAULT_SHELL, where, type StageState } from '../state.js';

export interface MetadataContext {
  warn: WarnFn;
  created: string;
  /** Build args given on the command line (consumed when a stage declares them). */
  buildArgs: ReadonlyMap<string, string>;
  /** Global ARG values (for `ARG NAME` without a default inside a stage). */
  globalArgs: ReadonlyMap<string, string>;
  /** Platform ARGs, which a stage gets by declaring them. */
  platformArgs: ReadonlyMap<string, string>;
  consumedArgs: Set<string>;
}

export const HISTORY_COMMENT = 'strata.dockerfile.v0';

// Edits go to the stage's draft, in place: copying the config per instruction made N lines cost N².
function record(state: StageState, createdBy: string, created: string): void {
  state.metadata().addHistory({ created, created_by: createdBy, comment: HISTORY_COMMENT });
}

function setConfig(state: StageState, edit: (c: ContainerConfig) => void): void {
  edit(state.metadata().edit());
}

function addKeys(state: StageState, field: 'ExposedPorts' | 'Volumes', keys: readonly string[]): void {
  const map = state.metadata().map(field);
  for (const k of keys) map[k] = {};
}

/** Shell form ⇒ the stage's SHELL plus the command; exec form as written. */
export function commandLine(state: StageState, args: readonly string[], prependShell: boolean): string[] {
  return prependShell ? [...state.shell, args.join(' ')] : [...args];
}

/** `80`, `80/udp`, `8000-8002/tcp` ⇒ ExposedPorts keys; an error at the line otherwise. */
export function exposedPorts(spec: string, at: string): string[] {
  const parsed = exposedPortKeys(spec);
  if ('invalid' in parsed) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: invalid port "${spec}": ${parsed.invalid}`);
  return parsed.keys;
}

/**
 * Applies an instruction that changes only the image config (no layer). Returns false for
 * instructions that are not metadata-only, which the engine hands to other handlers.
 */
export function applyMetadata(state: StageState, ins: Exclude<Instruction, { kind: 'FROM' }>, ctx: MetadataContext): boolean {
  const line = ins.location.line;
  const at = where(state, line);
  const expand = (w: string): string => expandInStage(state, w, line, ctx.warn);
  switch (ins.kind) {
    case 'ENV':
    case 'LABEL': {
      const pairs = ins.pairs.map((p) => [expand(p.key), expand(p.value)] as const);
      const draft = state.metadata();
      const labels = ins.kind === 'LABEL' ? draft.map('Labels') : undefined;
      for (const [k, v] of pairs) {
        if (labels) labels[k] = v;
        else draft.setEnv(k, v);
      }
      record(state, `${ins.kind} ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, ctx.created);
      return true;
    }
    case 'ARG': {
      for (const def of ins.args) declareArg(state, def, ctx, expand);
      return true;
    }
    case 'EXPOSE': {
      const ports = ins.ports.flatMap((p) => expandWordsInStage(state, p, line, ctx.warn)).flatMap((p) => exposedPorts(p, at));
      addKeys(state, 'ExposedPorts', ports);
      record(state, `EXPOSE ${ports.join(' ')}`, ctx.created);
      return true;
    }
    case 'VOLUME': {
      const volumes = ins.volumes.map(expand).filter((v) => v !== '');
      if (volumes.length === 0) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: VOLUME specified can not be an empty string`);
      addKeys(state, 'Volumes', volumes);
      record(state, `VOLUME ${JSON.stringify(volumes)}`, ctx.created);
      return true;
    }
    case 'MAINTAINER': {
      // Docker records the maintainer as the image author, not as a label.
      state.metadata().setAuthor(ins.maintainer);
      record(state, `MAINTAINER ${ins.maintainer}`, ctx.created);
      return true;
    }
    default: {
      const history = editConfig(state, ins, expand, at);
      if (history === undefined) return false;
      record(state, history, ctx.created);
      return true;
    }
  }
}

/** The instructions that set a field of the container config: returns the history text, or undefined for any other. */
function editConfig(state: StageState, ins: Exclude<Instruction, { kind: 'FROM' }>, expand: (w: string) => string, at: string): string | undefined {
  switch (ins.kind) {
    case 'USER': {
      const user = expand(ins.user);
      setConfig(state, (c) => (c.User = user));
      return `USER ${user}`;
    }
    case 'STOPSIGNAL': {
      const signal = expand(ins.signal);
      if (!/^(SIG[A-Z0-9+-]+|\d+)$/.test(signal)) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: invalid STOPSIGNAL "${signal}"`);
      setConfig(state, (c) => (c.StopSignal = signal));
      return `STOPSIGNAL ${signal}`;
    }
    case 'HEALTHCHECK': {
      const health = healthConfig(ins.health);
      setConfig(state, (c) => (c.Healthcheck = health));
      return `HEALTHCHECK ${JSON.stringify(health.Test)}`;
    }
    case 'CMD':
    case 'ENTRYPOINT': {
      const command = commandLine(state, ins.args, ins.prependShell);
      setConfig(state, (c) => {
        if (ins.kind === 'CMD') c.Cmd = command;
        else {
          c.Entrypoint = command;
          // An ENTRYPOINT resets a CMD inherited from the base image, but not one set in this stage.
          if (!state.cmdSet) c.Cmd = null;
        }
      });
      if (ins.kind === 'CMD') state.cmdSet = true;
      else state.entrypointSet = true;
      return `${ins.kind} ${JSON.stringify(command)}`;
    }
    case 'SHELL': {
      state.shell = [...ins.shell];
      setConfig(state, (c) => (c.Shell = [...ins.shell]));
      return `SHELL ${JSON.stringify(ins.shell)}`;
    }
    case 'ONBUILD': {
      setConfig(state, (c) => (c.OnBuild = [...(c.OnBuild ?? []), ins.expression]));
      return `ONBUILD ${ins.expression}`;
    }
    default:
      return undefined;
  }
}

/** An ARG's value: from the command line, else its default, else the global ARG, else a platform ARG. */
function declareArg(state: StageState, def: { name: string; defaultValue?: string | undefined }, ctx: MetadataContext, expand: (w: string) => string): void {
  const name = def.name;
  let value: string | undefined;
  if (ctx.buildArgs.has(name)) {
    value = ctx.buildArgs.get(name);
    ctx.consumedArgs.add(name);
  } else if (def.defaultValue !== undefined) {
    value = expand(def.defaultValue);
  } else if (ctx.globalArgs.has(name)) {
    value = ctx.globalArgs.get(name);
  } else if (ctx.platformArgs.has(name)) {
    value = ctx.platformArgs.get(name);
  }
  if (value !== undefined) state.args.set(name, value);
  else state.args.delete(name);
  state.metadata().setArg(name, value);
}

/** HEALTHCHECK's options as the config records them: a field only when it was given. */
function healthConfig(h: DockerfileHealthcheck): HealthConfig {
  const health: HealthConfig = { Test: h.test };
  if (h.interval) health.Interval = h.interval;
  if (h.timeout) health.Timeout = h.timeout;
  if (h.startPeriod) health.StartPeriod = h.startPeriod;
  if (h.startInterval) health.StartInterval = h.startInterval;
  if (h.retries) health.Retries = h.retries;
  return health;
}

export function resetShell(state: StageState): void {
  state.shell = state.image.config.config?.Shell?.length ? [...state.image.config.config.Shell] : [...DEFAULT_SHELL];
}
