/**
 * The built `strata` program against docker-registry over HTTPS with private CAs: the CAs of
 * NODE_EXTRA_CA_CERTS are trusted, together with --ca-cert's, and the programs strata starts see the
 * variable.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, REPO_ROOT, ok, strata } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs.js';
import { describeWithTools } from '../helpers/tools.js';

const run = promisify(execFile);

describeWithTools(['docker-registry', 'openssl'], 'strata CLI with registries over TLS with private CAs', () => {
  let tmp: string;
  let certsA: TestCertificates;
  let certsB: TestCertificates;
  /** HTTPS with CA A and htpasswd (credentials from a helper); HTTPS with CA B, anonymous. */
  let regA: TestRegistry;
  let regB: TestRegistry;
  let layer: string;
  let helperLog: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`make build\` (make test builds first)`);
    tmp = await mkdtemp(join(tmpdir(), 'strata-cli-tls-'));
    await mkdir(join(tmp, 'a'));
    await mkdir(join(tmp, 'b'));
    certsA = await makeCertificates(join(tmp, 'a'), 'strata test CA A');
    certsB = await makeCertificates(join(tmp, 'b'), 'strata test CA B');
    regA = await startRegistry({ auth: 'htpasswd', tls: certsA });
    regB = await startRegistry({ tls: certsB });
    layer = join(tmp, 'tree');
    await mkdir(join(layer, 'etc'), { recursive: true });
    await writeFile(join(layer, 'etc', 'greeting'), 'hello over TLS\n');
    // A credential helper that notes the environment strata gave it.
    const bin = join(tmp, 'bin');
    await mkdir(bin);
    helperLog = join(tmp, 'helper-env');
    await writeFile(
      join(bin, 'docker-credential-notes'),
      `#!/bin/sh\nenv > ${JSON.stringify(helperLog)}\nprintf '{"Username":"%s","Secret":"%s"}' ${JSON.stringify(regA.username)} ${JSON.stringify(regA.password)}\n`,
    );
    await chmod(join(bin, 'docker-credential-notes'), 0o755);
    await mkdir(join(tmp, 'docker'));
    await writeFile(join(tmp, 'docker', 'config.json'), JSON.stringify({ credHelpers: { [regA.host]: 'notes' } }));
    env = {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      STRATA_ROOT: join(tmp, 'store'),
      HOME: join(tmp, 'home'),
      DOCKER_CONFIG: join(tmp, 'docker'),
      SOURCE_DATE_EPOCH: '1700000000',
    };
  });
  afterAll(async () => {
    await regA?.stop();
    await regB?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('trusts the CAs of NODE_EXTRA_CA_CERTS, and a credential helper sees the variable as set', async () => {
    const digest = ok(
      await strata(['append', '--layer', layer, '-o', `docker://${regA.host}/tls/extra:1`, '--progress', 'quiet'], {
        ...env,
        NODE_EXTRA_CA_CERTS: certsA.caPath,
      }),
    );
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    const seen = await readFile(helperLog, 'utf8');
    expect(seen).toContain(`NODE_EXTRA_CA_CERTS=${certsA.caPath}\n`);
    // Read back over HTTPS, CA checked: the manifest is there under the digest strata printed.
    const info = JSON.parse(
      ok(await strata(['inspect', '--format', 'json', `docker://${regA.host}/tls/extra:1`], { ...env, NODE_EXTRA_CA_CERTS: certsA.caPath })),
    ) as { digest: string };
    expect(info.digest).toBe(digest);
  });

  it('refuses the certificate without the CA, and says how to trust it', async () => {
    const result = await strata(['append', '--layer', layer, '-o', `docker://${regB.host}/tls/untrusted:1`, '--progress', 'quiet'], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('not trusted');
    expect(result.stderr).toContain('--ca-cert');
  });

  it('trusts --ca-cert together with NODE_EXTRA_CA_CERTS, through the bin and with Node started on main.js', async () => {
    const base = `docker://${regA.host}/tls/extra:1`;
    ok(await strata(['append', '--layer', layer, '-o', base, '--progress', 'quiet'], { ...env, NODE_EXTRA_CA_CERTS: certsA.caPath }));
    const args = (tag: string) => [
      'append',
      '--base',
      base,
      '--layer',
      layer,
      '--set-label',
      `tag=${tag}`,
      '--ca-cert',
      certsB.caPath,
      '-o',
      `docker://${regB.host}/tls/both:${tag}`,
      '--progress',
      'quiet',
    ];
    ok(await strata(args('bin'), { ...env, NODE_EXTRA_CA_CERTS: certsA.caPath }));
    const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'dist', 'cli', 'main.js'), ...args('node')], {
      env: { ...env, NODE_EXTRA_CA_CERTS: certsA.caPath },
    });
    expect(stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
  });

  it('warns about an unreadable NODE_EXTRA_CA_CERTS and goes on, as Node does', async () => {
    const result = await strata(['append', '--layer', layer, '--ca-cert', certsB.caPath, '-o', `docker://${regB.host}/tls/warned:1`, '--progress', 'quiet'], {
      ...env,
      NODE_EXTRA_CA_CERTS: join(tmp, 'missing.pem'),
    });
    expect(ok(result)).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(result.stderr).toContain(`WARNING: ignoring NODE_EXTRA_CA_CERTS ${join(tmp, 'missing.pem')}`);
  });
});
