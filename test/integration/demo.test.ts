/**
 * `make demo`'s main job, as the Makefile runs it: testdata/demo/Dockerfile built into a local store and
 * an OCI layout, which umoci unpacks with the owners the Dockerfile asked for.
 */
import { stat, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ok, REPO_ROOT, strata } from '../helpers/cli.js';
import { describeWithTools } from '../helpers/tools.js';
import { layoutConfig, umociUnpack } from '../helpers/umoci.js';

describeWithTools(['umoci'], 'the demo Dockerfile', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'strata-demo-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('builds into the local store and an OCI layout that umoci unpacks, the same digest each time', async () => {
    const layout = join(work, 'layout');
    const env = { STRATA_ROOT: join(work, 'store'), SOURCE_DATE_EPOCH: '1700000000' };
    const build = ['build', join(REPO_ROOT, 'testdata', 'demo'), '-t', 'strata-demo:latest', '--progress', 'quiet'];
    const digest = ok(await strata([...build, '-o', 'type=image', '-o', `type=oci,dest=${layout},tar=false`], env));
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const inspected = JSON.parse(ok(await strata(['inspect', '--format', 'json', 'strata-demo:latest'], env))) as { digest: string };
    expect(inspected.digest).toBe(digest);
    // A fresh store gives the same image.
    expect(ok(await strata(build, { ...env, STRATA_ROOT: join(work, 'store2') }))).toBe(digest);

    const rootfs = await umociUnpack(layout, 'latest', join(work, 'bundle'));
    expect(await readFile(join(rootfs, 'srv', 'www', 'VERSION'), 'utf8')).toBe('strata demo 1\n');
    const site = await stat(join(rootfs, 'srv', 'www', 'index.html'));
    expect([site.uid, site.gid]).toEqual([65534, 65534]);
    const config = (await layoutConfig(layout)) as { config: { User: string; Env: string[]; Cmd: string[] } };
    expect(config.config.User).toBe('nobody');
    expect(config.config.Env).toContain('GREETING=hello');
    expect(config.config.Cmd).toEqual(['/bin/demo', '--serve']);
  });
});
