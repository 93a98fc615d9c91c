import type { Digest } from '../digest/index.js';
import { formatPlatform, type Platform } from '../oci/index.js';
import { PredicateType } from './statement.js';

export type ProvenanceMode = 'min' | 'max';
export type ProvenanceVersion = 'v1' | 'v0.2';

/** Everything a build knows of itself that provenance records. */
export interface ProvenanceInput {
  mode: ProvenanceMode;
  version: ProvenanceVersion;
  /** strata's version, for the builder's id. */
  builderVersion: string;
  /** The Dockerfile, by its path relative to the context (or its name) and its digest. */
  dockerfile: { path: string; digest: Digest };
  buildArgs: Readonly<Record<string, string>>;
  target?: string | undefined;
  platform: Platform;
  builderPlatform: Platform;
  /** Base images, named contexts, ADD URLs: what went in, each with a digest. */
  materials: ReadonlyArray<{ uri: string; digest: Digest }>;
  /** `--build-context` names given (their directories are not digested; an image context is a material). */
  contexts: readonly string[];
  startedOn: Date;
  finishedOn: Date;
  /** SOURCE_DATE_EPOCH, when the build had one: the times above then come from it. */
  sourceDateEpoch?: number | undefined;
  /** Build steps (max mode): the instruction as resolved and where in the Dockerfile. */
  steps?: ReadonlyArray<{ stage: string; instruction: string; line: number }> | undefined;
  /** Identifies this invocation; derived from the inputs when the build is reproducible. */
  invocationId: string;
}

/**
 * Whether a build arg's name says it holds a secret (docker's SecretsUsedInArgOrEnv rule), or it is a
 * proxy variable (whose URL may carry credentials): such values never reach provenance.
 */
export function isSecretArgName(name: string): boolean {
  if (/^(https?_proxy|ftp_proxy|no_proxy|all_proxy)$/i.test(name)) return true;
  return /(?:^|_)(?:apikey|auth|credential|credentials|key|password|passwd|pass|secret|token|pat)(?:_|$)/i.test(name);
}

function publicArgs(args: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(args).sort()) if (!isSecretArgName(key)) out[`build-arg:${key}`] = args[key]!;
  return out;
}

/** The buildType strata's provenance declares: a Dockerfile build as strata runs it. */
export const BUILD_TYPE = 'https://strata.invalid/provenance/dockerfile@v1';

function time(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function digestMap(d: Digest): Record<string, string> {
  const [algorithm, hex] = d.split(':') as [string, string];
  return { [algorithm]: hex };
}

/** The predicate type and predicate of SLSA provenance for one platform's image. */
export function provenancePredicate(input: ProvenanceInput): { predicateType: string; predicate: unknown } {
  const builderId = `pkg:npm/strata@${input.builderVersion}`;
  const request: Record<string, unknown> = {
    frontend: 'dockerfile.v0',
    args: {
      ...publicArgs(input.buildArgs),
      ...(input.target ? { target: input.target } : {}),
      ...Object.fromEntries(input.contexts.map((c) => [`context:${c}`, 'given'])),
    },
    locals: [{ name: 'context' }, { name: 'dockerfile' }],
  };
  const materials = [...input.materials].sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0)).map((m) => ({ uri: m.uri, digest: digestMap(m.digest) }));
  const buildConfig = input.mode === 'max' && input.steps ? { steps: input.steps.map((s) => ({ ...s })) } : undefined;
  if (input.version === 'v1') {
    return {
      predicateType: PredicateType.slsaV1,
      predicate: {
        buildDefinition: {
          buildType: BUILD_TYPE,
          externalParameters: {
            configSource: { path: input.dockerfile.path, digest: digestMap(input.dockerfile.digest) },
            request: { ...request, platform: formatPlatform(input.platform) },
          },
          internalParameters: {
            builderPlatform: formatPlatform(input.builderPlatform),
            ...(input.sourceDateEpoch !== undefined ? { sourceDateEpoch: String(input.sourceDateEpoch) } : {}),
            ...(buildConfig ? { buildConfig } : {}),
          },
          resolvedDependencies: materials,
        },
        runDetails: {
          builder: { id: builderId },
          metadata: { invocationId: input.invocationId, startedOn: time(input.startedOn), finishedOn: time(input.finishedOn) },
        },
      },
    };
  }
  return {
    predicateType: PredicateType.slsaV02,
    predicate: {
      builder: { id: builderId },
      buildType: BUILD_TYPE,
      materials,
      invocation: {
        configSource: { entryPoint: input.dockerfile.path, digest: digestMap(input.dockerfile.digest) },
        parameters: request,
        environment: { platform: formatPlatform(input.platform) },
      },
      ...(buildConfig ? { buildConfig } : {}),
      metadata: {
        buildInvocationId: input.invocationId,
        buildStartedOn: time(input.startedOn),
        buildFinishedOn: time(input.finishedOn),
        completeness: { parameters: true, environment: true, materials: false },
        reproducible: input.sourceDateEpoch !== undefined,
      },
    },
  };
}
