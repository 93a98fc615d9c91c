/**
 * ADD <git> over ssh through the build's --ssh agent: a real sshd on loopback (its own config, host key
 * and authorized key, run as the test's user) serving a repository, and a real ssh-agent holding the
 * only key it accepts. Without --ssh the build says it has no agent, in one line.
 * Needs sshd, ssh-agent and ssh-keygen (openssh-server, openssh-client).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, ok, strata, tool } from '../helpers/cli.js';
import { git, makeRepo } from '../helpers/git-server.js';
import { tarEntries } from '../helpers/image-read.js';
import { freePort } from '../helpers/ports.js';
import { describeWithTools, findOnPath } from '../helpers/tools.js';

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start`);
}

// sshd lives in /usr/sbin, which a non-root user's PATH often lacks.
const SBIN_ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

describeWithTools(
  ['git', 'sshd', 'ssh-agent', 'ssh-keygen'],
  'ADD <git> over ssh with --ssh',
  () => {
    let tmp: string;
    let sshd: ChildProcess;
    let agent: ChildProcess;
    let sock: string;
    let url: string;

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json && node scripts/bundle-cli.mjs\``);
      tmp = await mkdtemp(join(tmpdir(), 'strata-remote-ssh-'));
      ok(await tool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'host_key')]));
      ok(await tool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'client_key')]));
      const port = await freePort();
      await writeFile(
        join(tmp, 'sshd_config'),
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${join(tmp, 'host_key')}`,
          `AuthorizedKeysFile ${join(tmp, 'client_key.pub')}`,
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'PermitRootLogin prohibit-password',
          `PidFile ${join(tmp, 'sshd.pid')}`,
          '',
        ].join('\n'),
      );
      // sshd started as root wants its privilege separation directory.
      if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true });
      sshd = spawn(findOnPath('sshd', SBIN_ENV) ?? '/usr/sbin/sshd', ['-D', '-e', '-f', join(tmp, 'sshd_config')], { stdio: 'ignore' });
      sock = join(tmp, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      await waitFor(async () => existsSync(sock), 'ssh-agent');
      const added = await new Promise<number>((resolve) => {
        const p = spawn('ssh-add', [join(tmp, 'client_key')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
        p.on('close', (code) => resolve(code ?? 1));
      });
      expect(added).toBe(0);
      const repo = join(tmp, 'repos', 'app.git');
      const commit = await makeRepo(repo);
      await commit({ 'sub/over-ssh.txt': 'via ssh\n' }, '2024-01-02T03:04:05Z');
      await git(repo, ['symbolic-ref', 'HEAD', 'refs/heads/main']);
      url = `ssh://${userInfo().username}@127.0.0.1:${port}${repo}`;
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const p = spawn('git', ['ls-remote', url], {
              env: { ...process.env, SSH_AUTH_SOCK: sock, GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' },
              stdio: 'ignore',
            });
            p.on('close', (code) => resolve(code === 0));
          }),
        'sshd',
      );
    });
    afterAll(async () => {
      sshd?.kill('SIGTERM');
      agent?.kill('SIGTERM');
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('fetches through the agent given with --ssh default, and says so when there is none', async () => {
      const ctx = join(tmp, 'ctx');
      await mkdir(ctx, { recursive: true });
      await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${url}#main:sub /s/\n`);
      const out = join(tmp, 'rootfs.tar');
      ok(
        await strata(['build', '--progress', 'quiet', '--ssh', 'default', '-o', `type=tar,dest=${out}`, ctx], {
          STRATA_ROOT: join(tmp, 'store'),
          SSH_AUTH_SOCK: sock,
          HOME: tmp,
        }),
      );
      expect((await tarEntries(out)).get('s/over-ssh.txt')?.content.toString()).toBe('via ssh\n');
      const res = await strata(['build', '--progress', 'quiet', ctx], { STRATA_ROOT: join(tmp, 'store2'), HOME: tmp });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(`ADD failed: git source ${url.replace(/\/\/[^@]*@/, '//***@')} is reached over ssh, but the build has no ssh agent`);
    });
  },
  SBIN_ENV,
);
