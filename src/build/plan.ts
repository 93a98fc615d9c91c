import { StrataError } from '../errors/index.js';
import { expandWord, type DockerfileStage, type ParsedDockerfile } from '../dockerfile/index.js';

export type BaseSource = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'context'; name: string } | { kind: 'image'; ref: string };

export interface StagePlan {
  stage: DockerfileStage;
  /** `name` or the stage's index, for messages. */
  label: string;
  base: BaseSource;
  /** FROM --platform, expanded. */
  platform?: string;
  /** Stages this one reads from (its base and every COPY --from / RUN --mount from=). */
  dependsOn: number[];
}

export interface BuildPlan {
  /** Only the stages the target needs, each after the stages it depends on. */
  stages: StagePlan[];
  target: number;
  /** Every stage by index, for `--from` lookups. */
  all: StagePlan[];
}

/**
 * Resolves what a `FROM` or `--from` names: an earlier stage (by name or index), a named build
 * context, `scratch`, or an image reference.
 */
export function resolveSourceName(name: string, before: number, parsed: ParsedDockerfile, contextNames: ReadonlySet<string>): BaseSource {
  const lower = name.toLowerCase();
  if (contextNames.has(name)) return { kind: 'context', name };
  const byName = parsed.stages.findIndex((s, i) => i < before && s.name === lower);
  if (byName >= 0) return { kind: 'stage', index: byName };
  if (/^\d+$/.test(name) && Number(name) < before) return { kind: 'stage', index: Number(name) };
  if (lower === 'scratch') return { kind: 'scratch' };
  return { kind: 'image', ref: name };
}

export interface PlanOptions {
  target?: string | undefined;
  /** Values of the global ARGs (defaults expanded, build args applied, platform ARGs included). */
  globalArgs: ReadonlyMap<string, string>;
  contextNames: ReadonlySet<string>;
  escapeToken: '\\' | '`';
  file: string;
}

export function planBuild(parsed: ParsedDockerfile, options: PlanOptions): BuildPlan {
  if (parsed.stages.length === 0) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${options.file}: the Dockerfile has no FROM instruction`);
  const expand = (word: string, line: number): string => {
    try {
      return expandWord(word, options.globalArgs, { escapeToken: options.escapeToken });
    } catch (cause) {
      throw new StrataError('E_EXPANSION', `${options.file}:${line}: ${(cause as Error).message}`, { cause });
    }
  };
  const all: StagePlan[] = parsed.stages.map((stage, index) => {
    const line = stage.from.location.line;
    const image = expand(stage.from.image, line);
    if (image === '') throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${options.file}:${line}: FROM names no image (an ARG expanded to nothing?)`);
    const base = resolveSourceName(image, index, parsed, options.contextNames);
    const dependsOn = base.kind === 'stage' ? [base.index] : [];
    for (const ins of stage.instructions) {
      const from = ins.kind === 'COPY' ? ins.from : undefined;
      if (from !== undefined) {
        const src = resolveSourceName(expand(from, ins.location.line), index, parsed, options.contextNames);
        if (src.kind === 'stage') dependsOn.push(src.index);
        else if (src.kind === 'image' && parsed.stages.some((s, i) => i >= index && s.name === from.toLowerCase())) {
          throw new StrataError(
            'E_DOCKERFILE_INSTRUCTION',
            `${options.file}:${ins.location.line}: COPY --from=${from} names a stage that is defined later; a stage can only copy from stages before it`,
          );
        }
      }
      if (ins.kind === 'RUN') {
        for (const mount of ins.mounts) {
          const m = /(?:^|,)from=([^,]+)/.exec(mount);
          if (!m) continue;
          const src = resolveSourceName(expand(m[1]!, ins.location.line), index, parsed, options.contextNames);
          if (src.kind === 'stage') dependsOn.push(src.index);
        }
      }
    }
    const plan: StagePlan = { stage, label: stage.name ?? String(index), base, dependsOn: [...new Set(dependsOn)] };
    if (stage.from.platform !== undefined) plan.platform = expand(stage.from.platform, line);
    return plan;
  });

  let target = all.length - 1;
  if (options.target !== undefined) {
    target = all.findIndex((p) => p.stage.name === options.target!.toLowerCase());
    if (target < 0) {
      const names = all.map((p) => p.stage.name).filter(Boolean);
      throw new StrataError('E_USAGE', `target stage "${options.target}" could not be found in ${options.file}`, {
        hint: names.length ? `stages: ${names.join(', ')}` : 'the Dockerfile names no stage (FROM image AS name)',
      });
    }
  }
  const needed: StagePlan[] = [];
  const seen = new Set<number>();
  const visit = (i: number): void => {
    if (seen.has(i)) return;
    seen.add(i);
    for (const dep of all[i]!.dependsOn) visit(dep);
    needed.push(all[i]!);
  };
  visit(target);
  return { stages: needed, target, all };
}
