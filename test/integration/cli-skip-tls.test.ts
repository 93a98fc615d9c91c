/**
 * `--skip-tls-verify[=HOST]` against docker-registry over HTTPS with a certificate no trusted CA signed:
 * refused by default with the hint, accepted with the flag for that host (warned once), still refused for
 * another host.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata } from '../helpers/cli.js';
import { writeTinyOciLayout, type TinyImage } from '../helpers/oci-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeCertificates } from '../helpers/tls-certs.js';
import { describeWithTools } from '../helpers/tools.js';

describeWithTools(['docker-registry', 'openssl'], 'strata --skip-tls-verify', () => {
  let tmp: string;
  let regA: TestRegistry;
  let regB: TestRegistry;
  let tiny: TinyImage;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first`);
    tmp = await mkdtemp(join(tmpdir(), 'strata-skip-tls-'));
    await mkdir(join(tmp, 'a'));
    await mkdir(join(tmp, 'b'));
    regA = await startRegistry({ tls: await makeCertificates(join(tmp, 'a'), 'untrusted CA A') });
    regB = await startRegistry({ tls: await makeCertificates(join(tmp, 'b'), 'untrusted CA B') });
    tiny = await writeTinyOciLayout(join(tmp, 'tiny'), { tag: 'v1', content: 'self-signed\n' });
    env = { STRATA_ROOT: join(tmp, 'store'), HOME: join(tmp, 'home'), DOCKER_CONFIG: join(tmp, 'docker') };
  });
  afterAll(async () => {
    await regA?.stop();
    await regB?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('refuses an untrusted certificate by default, with the hint naming the flag', async () => {
    const refused = await strata(['push', `oci:${tiny.dir}:v1`, `${regA.host}/tls/app:1`, '--progress', 'quiet'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/TLS certificate of 127\.0\.0\.1:\d+ not trusted/);
    expect(refused.stderr).toContain(`--skip-tls-verify=${regA.host}`);
  });

  it('accepts it for the named host only, warning once', async () => {
    const pushed = await strata(['push', `oci:${tiny.dir}:v1`, `${regA.host}/tls/app:1`, `--skip-tls-verify=${regA.host}`, '--progress', 'quiet'], env);
    expect(ok(pushed)).toBe(tiny.manifestDigest);
    expect(pushed.stderr.match(/WARNING: TLS certificate verification is off for/g)).toHaveLength(1);
    expect(ok(await strata(['digest', `${regA.host}/tls/app:1`, `--skip-tls-verify=${regA.host}`], env))).toBe(tiny.manifestDigest);

    // The same flag does not cover another registry, even on the same address.
    const other = await strata(
      ['copy', `docker://${regA.host}/tls/app:1`, `docker://${regB.host}/tls/app:1`, `--skip-tls-verify=${regA.host}`, '--progress', 'quiet'],
      env,
    );
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`TLS certificate of ${regB.host} not trusted`);
    // Both named, it goes through; the flag alone covers every registry.
    ok(
      await strata(
        [
          'copy',
          `docker://${regA.host}/tls/app:1`,
          `docker://${regB.host}/tls/app:1`,
          `--skip-tls-verify=${regA.host}`,
          `--skip-tls-verify=${regB.host}`,
          '--progress',
          'quiet',
        ],
        env,
      ),
    );
    expect(ok(await strata(['digest', `${regB.host}/tls/app:1`, '--skip-tls-verify'], env))).toBe(tiny.manifestDigest);
  });

  it("a registry reference given as the flag's value is refused with a usage error", async () => {
    const wrong = await strata(['pull', '--skip-tls-verify', `${regA.host}/tls/app:1`], env);
    expect(wrong.code).toBe(2);
  });
});
