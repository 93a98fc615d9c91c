/**
 * strata as its users get it: `npm pack`, the tarball installed into an empty project (offline, its
 * dependencies already in place), then the `strata` bin and README's "Using strata from code" example,
 * type-checked against the installed package and run against docker-registry on loopback.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWithTools } from '../helpers/tools.js';

const run = promisify(execFile);
const PACKAGE_VERSION = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The code block README marks with `<!-- example: library -->`. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const match = /<!-- example: library -->\n```ts\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README.md has no <!-- example: library --> block');
  return match[1]!;
}

describeWithTools(['docker-registry', 'skopeo'], 'the packed package', () => {
  let work: string;
  let project: string;
  let registry: TestRegistry;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'strata-package-'));
    registry = await startRegistry();
    const { stdout } = await run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: REPO_ROOT });
    const tarball = join(work, stdout.trim().split('\n').pop()!);
    project = join(work, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'uses-strata', private: true, type: 'module' }));
    // The tests reach no registry but loopback: the dependencies come from this checkout, so npm has
    // nothing to fetch and installs the tarball as it would from the registry.
    await run('cp', ['-a', join(REPO_ROOT, 'node_modules'), join(project, 'node_modules')]);
    await rm(join(project, 'node_modules', '.package-lock.json'), { force: true });
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-save', tarball], { cwd: project });
  }, 180_000);
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('installs a strata bin that runs as dist/cli/main.js does', async () => {
    const bin = join(project, 'node_modules', '.bin', 'strata');
    const { stdout } = await run(bin, ['--version']);
    expect(stdout.trim()).toBe(PACKAGE_VERSION);
    const dockerfile = join(work, 'Dockerfile');
    await writeFile(dockerfile, 'FROM scratch AS a\nCOPY . /x\nFROM a\nLABEL k=v\n');
    const installed = await run(bin, ['parse', '-f', dockerfile]);
    const here = await strata(['parse', '-f', dockerfile]);
    expect(here.code).toBe(0);
    expect(installed.stdout).toBe(here.stdout);
  });

  it("README's example type-checks against the package and builds, pushes and inspects for real", async () => {
    const example = join(project, 'example.ts');
    await writeFile(example, await readmeExample());
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          outDir: 'build',
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
        },
        files: ['example.ts'],
      }),
    );
    await run(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', project]);

    await mkdir(join(project, 'app'));
    await writeFile(join(project, 'app', 'Dockerfile'), 'FROM scratch\nARG GREETING\nCOPY greeting.txt /etc/\nLABEL greeting=$GREETING\n');
    await writeFile(join(project, 'app', 'greeting.txt'), 'hello from the library\n');
    const { stdout } = await run(process.execPath, [join(project, 'build', 'example.js')], {
      cwd: project,
      env: { PATH: process.env.PATH, REGISTRY: registry.host },
    });
    const digest = /^pushed (sha256:[0-9a-f]{64}), 1 layers, created 2023-11-14T22:13:20Z$/m.exec(stdout)?.[1];
    expect(digest, stdout).toBeDefined();
    expect(stdout).toMatch(/^built sha256:[0-9a-f]{64}: 0\/3 steps cached$/m);
    const { stdout: raw } = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/demo/app:1`]);
    expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(digest);
    const layout = JSON.parse(await readFile(join(project, 'out', 'app-oci', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(layout.manifests.map((m) => m.digest)).toEqual([digest]);
  }, 120_000);
});
