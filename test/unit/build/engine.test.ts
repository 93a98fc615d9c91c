import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testBuild, writeContext } from './harness.js';
import {
  LocalStore,
  StrataError,
  emptyImage,
  noneExecutor,
  parseChmod,
  runBuild,
  serializeImage,
  type BuildEvent,
  type BuildInput,
  type Platform,
} from '../../../src/internals.js';

const PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
let work: string;
let store: LocalStore;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'strata-engine-'));
  store = await LocalStore.open(join(work, 'store'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const context = (files: Record<string, string>): Promise<string> => writeContext(work, files);

async function build(text: string, files: Record<string, string> = {}, extra: Partial<BuildInput> = {}, events: BuildEvent[] = []) {
  return testBuild(store, text, await context(files), extra, { events: (e) => events.push(e) });
}

async function failure(promise: Promise<unknown>): Promise<StrataError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof StrataError) return e;
    throw e;
  }
  throw new Error('expected the build to fail');
}

describe('metadata instructions', () => {
  it('sets the config as docker does', async () => {
    const { image } = await build(`FROM scratch
ARG V=1.0
ENV A=1 B="two words"
ENV C $A-$V
LABEL version=$V "with space"="yes"
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/logs"]
USER app:app
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/
SHELL ["/bin/bash", "-c"]
CMD echo hi
MAINTAINER someone@example.com
ONBUILD COPY . /src
`);
    const c = image.config.config!;
    expect(c.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1', 'B=two words', 'C=1-1.0']);
    expect(c.WorkingDir).toBe('/');
    expect(c.Labels).toEqual({ version: '1.0', 'with space': 'yes' });
    expect(Object.keys(c.ExposedPorts!).sort()).toEqual(['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
    expect(c.Volumes).toEqual({ '/data': {}, '/logs': {} });
    expect(c.User).toBe('app:app');
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5_000_000_000, Retries: 3 });
    expect(c.Cmd).toEqual(['/bin/bash', '-c', 'echo hi']);
    expect(c.OnBuild).toEqual(['COPY . /src']);
    expect(image.config.author).toBe('someone@example.com');
    expect(image.config.history!.every((h) => h.empty_layer)).toBe(true);
    expect(image.config.created).toBe('2023-11-14T22:13:20Z');
  });

  it('an ENTRYPOINT resets a CMD inherited from the base stage, not one set in the same stage', async () => {
    const { image } = await build(`FROM scratch AS base
CMD ["base"]
FROM base AS a
ENTRYPOINT ["/e"]
FROM a
CMD ["own"]
ENTRYPOINT ["/e2"]
`);
    expect(image.config.config!.Entrypoint).toEqual(['/e2']);
    expect(image.config.config!.Cmd).toEqual(['own']);
    const { image: a } = await build(`FROM scratch AS base
CMD ["base"]
FROM base
ENTRYPOINT ["/e"]
`);
    expect(a.config.config!.Cmd).toBeNull();
  });

  it('scopes ARGs: globals only in FROM unless redeclared, build args override, ENV wins over ARG', async () => {
    const { image } = await build(
      `ARG G=global
ARG TAG
FROM scratch
ENV SEEN_G=\${G:-unset}
ARG G
ARG X=default
ENV SEEN_G2=$G X=$X
ARG TARGETARCH
ENV ARCH=$TARGETARCH
ENV X=fromenv
ARG X=ignored
LABEL x=$X
`,
      {},
      { buildArgs: { X: 'cli' } },
    );
    const env = image.config.config!.Env!;
    expect(env).toContain('SEEN_G=unset');
    expect(env).toContain('SEEN_G2=global');
    expect(env).toContain('ARCH=amd64');
    expect(image.config.config!.Labels).toEqual({ x: 'fromenv' });
  });

  it('warns about build args nobody consumed and unset variables', async () => {
    const outcome = await build('FROM scratch\nENV A=$NOPE\n', {}, { buildArgs: { UNUSED: '1' } });
    expect(outcome.warnings.join('\n')).toMatch(/UNUSED/);
    expect(outcome.warnings.join('\n')).toMatch(/Dockerfile:2: variable "NOPE" is not set/);
  });
});

describe('COPY', () => {
  it("copies files and directory contents with docker's destination rules", async () => {
    const { image } = await build(
      `FROM scratch
WORKDIR /app
COPY a.txt .
COPY dir/ sub/
COPY a.txt b.txt /multi/
COPY a.txt /renamed
`,
      { 'a.txt': 'a', 'b.txt': 'b', 'dir/x': 'x', 'dir/deep/y': 'y' },
    );
    expect(image.layers).toHaveLength(5);
    expect(image.config.config!.WorkingDir).toBe('/app');
    expect(image.config.history!.filter((h) => !h.empty_layer)).toHaveLength(5);
  });

  it('needs a directory destination ending in / for several sources', async () => {
    const err = await failure(build('FROM scratch\nCOPY a.txt b.txt /dest\n', { 'a.txt': 'a', 'b.txt': 'b' }));
    expect(err.message).toMatch(/^Dockerfile:2: .*must be a directory and end with a \//);
  });

  it('names the line and the source when a source is missing', async () => {
    const err = await failure(build('FROM scratch\n\nCOPY missing.txt /x\n'));
    expect(err.code).toBe('E_NOT_FOUND');
    expect(err.message).toMatch(/^Dockerfile:3: COPY failed: "missing.txt": not found in the build context/);
  });

  it('scopes ../ to the context and never reads outside it', async () => {
    await writeFile(join(work, 'outside-secret'), 'secret');
    const ctx = await context({ 'in.txt': 'in' });
    await symlink(join(work, 'outside-secret'), join(ctx, 'link'));
    const run = (text: string) =>
      runBuild(
        {
          dockerfile: { file: 'Dockerfile', text },
          contextDir: ctx,
          buildArgs: {},
          platform: PLATFORM,
          buildPlatform: PLATFORM,
          labels: {},
          buildContexts: {},
          noCache: true,
        },
        {
          store,
          openImage: async () => {
            throw new Error('unused');
          },
          openNamedContext: async () => {
            throw new Error('unused');
          },
          executor: noneExecutor(),
          now: () => new Date(),
        },
      );
    expect((await failure(run('FROM scratch\nCOPY ../outside-secret /x\n'))).code).toBe('E_NOT_FOUND');
    expect((await failure(run('FROM scratch\nCOPY link /x\n'))).code).toBe('E_NOT_FOUND');
  });

  it('refuses an unknown --from stage defined later and a ${X:?} with X unset', async () => {
    const err = await failure(build('FROM scratch\nCOPY --from=later /a /b\nFROM scratch AS later\n'));
    expect(err.message).toMatch(/^Dockerfile:2: .*defined later/);
    const err2 = await failure(build('FROM scratch\nENV A=${X:?required}\n'));
    expect(err2.code).toBe('E_EXPANSION');
    expect(err2.message).toMatch(/^Dockerfile:2: .*required/);
  });

  it('reuses layer steps from the cache and misses after a change', async () => {
    const events: BuildEvent[] = [];
    const ctxFiles = { 'a.txt': 'one', 'b.txt': 'two' };
    const text = 'FROM scratch\nCOPY a.txt /a\nCOPY b.txt /b\n';
    const first = await build(text, ctxFiles);
    const second = await build(text, ctxFiles, {}, events);
    expect(serializeImage(second.image).manifest.descriptor.digest).toBe(serializeImage(first.image).manifest.descriptor.digest);
    expect(second.steps.cached).toBe(2);
    const third = await build(text, { 'a.txt': 'one', 'b.txt': 'changed' });
    expect(third.steps.cached).toBe(1);
    // A LABEL above the COPYs is no part of what they read: both replay.
    const fourth = await build('FROM scratch\nLABEL x=1\nCOPY a.txt /a\nCOPY b.txt /b\n', ctxFiles);
    expect(fourth.steps.cached).toBe(2);
    expect(events.filter((e) => e.type === 'step' && e.state === 'cached')).toHaveLength(2);
  });
});

describe('stages and RUN', () => {
  it('builds only what --target needs', async () => {
    const events: BuildEvent[] = [];
    await build('FROM scratch AS unused\nCOPY nope /x\nFROM scratch AS wanted\nLABEL a=b\nFROM wanted\n', {}, { target: 'wanted' }, events);
    expect(events.filter((e) => e.type === 'stage').map((e) => (e as { stage: string }).stage)).toEqual(['wanted']);
    const err = await failure(build('FROM scratch\n', {}, { target: 'nope' }));
    expect(err.message).toMatch(/target stage "nope" could not be found/);
  });

  it('RUN with the none executor stops at the line', async () => {
    const err = await failure(build('FROM scratch\nLABEL a=b\nRUN echo hi\n'));
    expect(err.code).toBe('E_RUN_UNSUPPORTED');
    expect(err.message).toMatch(/^Dockerfile:3: RUN needs an executor/);
  });

  it('starts from an empty image for scratch', () => {
    expect(emptyImage(PLATFORM).layers).toEqual([]);
  });
});

describe('--chmod', () => {
  it('takes octal and symbolic modes', () => {
    expect(parseChmod('755', 'x')(0o644, false)).toBe(0o755);
    expect(parseChmod('u+x,go-w', 'x')(0o666, false)).toBe(0o744);
    expect(parseChmod('a=rX', 'x')(0o700, true)).toBe(0o555);
    expect(parseChmod('a=rX', 'x')(0o600, false)).toBe(0o444);
    expect(() => parseChmod('bogus', 'Dockerfile:3')).toThrow(/Dockerfile:3: invalid --chmod/);
  });
});

describe('image identity across rebuilds', () => {
  it('a rebuild that replays every step gives the same image without SOURCE_DATE_EPOCH', async () => {
    let now = Date.parse('2024-05-01T00:00:00Z');
    const files = { 'a.txt': 'stable' };
    const contextDir = await context(files);
    const run = () =>
      runBuild(
        {
          dockerfile: { file: 'Dockerfile', text: 'FROM scratch\nCOPY a.txt /a\nENV X=1\n' },
          contextDir,
          buildArgs: {},
          platform: PLATFORM,
          buildPlatform: PLATFORM,
          labels: {},
          buildContexts: {},
          noCache: false,
        },
        {
          store,
          openImage: async () => {
            throw new Error('unused');
          },
          openNamedContext: async () => {
            throw new Error('unused');
          },
          executor: noneExecutor(),
          now: () => new Date((now += 60_000)),
        },
      );
    const first = await run();
    const second = await run();
    expect(second.steps.cached).toBe(1);
    expect(serializeImage(second.image).manifest.descriptor.digest).toBe(serializeImage(first.image).manifest.descriptor.digest);
  });
});
