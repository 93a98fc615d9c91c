import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError, noneExecutor, runBuild, type BuildDeps, type BuildInput, type LocalStore, type Platform } from '../../../src/internals.js';

/** The engine tests' shared scaffolding: a context on disk and a build with no registry and no RUN. */
export const TEST_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export async function writeContext(parent: string, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(parent, 'ctx-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

export function testBuild(store: LocalStore, text: string, contextDir: string, input: Partial<BuildInput> = {}, deps: Partial<BuildDeps> = {}) {
  return runBuild(
    {
      dockerfile: { file: 'Dockerfile', text },
      contextDir,
      buildArgs: {},
      platform: TEST_PLATFORM,
      buildPlatform: TEST_PLATFORM,
      labels: {},
      buildContexts: {},
      noCache: false,
      sourceDateEpoch: 1700000000,
      ...input,
    },
    {
      store,
      openImage: async (ref) => {
        throw new StrataError('E_NOT_FOUND', `no image ${ref} in this test`);
      },
      openNamedContext: async () => {
        throw new StrataError('E_NOT_FOUND', 'no named contexts in this test');
      },
      executor: noneExecutor(),
      now: () => new Date('2024-01-01T00:00:00Z'),
      ...deps,
    },
  );
}
