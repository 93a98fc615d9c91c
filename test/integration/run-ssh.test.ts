import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile, copyFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { strata } from '../helpers/cli.js';
import { describeAsRoot, describeWithTools } from '../helpers/tools.js';

describeAsRoot('RUN --mount=type=ssh', () => {
  describeWithTools(['busybox'], 'RUN --mount=type=ssh forwards an agent socket', () => {
    let work: string;
    let agent: Server;
    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'strata-ssh-'));
      await chmod(work, 0o755);
      const base = join(work, 'base');
      await mkdir(join(base, 'bin'), { recursive: true });
      await mkdir(join(base, 'tmp'), { recursive: true });
      await copyFile('/bin/busybox', join(base, 'bin', 'busybox'));
      await chmod(join(base, 'bin', 'busybox'), 0o755);
      for (const applet of ['sh', 'test', 'echo']) await symlink('busybox', join(base, 'bin', applet));
      agent = createServer(() => undefined).listen(join(work, 'agent.sock'));
      const store = { STRATA_ROOT: join(work, 'store') };
      expect((await strata(['append', '--layer', base, '-t', 'sshbase:1'], store)).code).toBe(0);
      await mkdir(join(work, 'ctx'));
      await writeFile(join(work, 'ctx', 'Dockerfile'), 'FROM sshbase:1\nRUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo agent-ok > /agent\n');
    });
    afterAll(async () => {
      agent?.close();
      await rm(work, { recursive: true, force: true });
    });

    it('the step sees the socket at SSH_AUTH_SOCK, and nothing of it stays in the image', async () => {
      const out = join(work, 'out');
      const r = await strata(['build', join(work, 'ctx'), '--ssh', 'default', '--executor', 'chroot', '--progress', 'quiet', '-o', `type=local,dest=${out}`], {
        STRATA_ROOT: join(work, 'store'),
        SSH_AUTH_SOCK: join(work, 'agent.sock'),
      });
      expect(r.stderr).toBe('');
      expect(await readFile(join(out, 'agent'), 'utf8')).toBe('agent-ok\n');
      await expect(stat(join(out, 'run'))).rejects.toThrow();
    });

    it('without --ssh a required agent is a clear error at the line', async () => {
      await writeFile(join(work, 'ctx', 'Dockerfile.req'), 'FROM sshbase:1\nRUN --mount=type=ssh,required=true true\n');
      const r = await strata(['build', join(work, 'ctx'), '-f', join(work, 'ctx', 'Dockerfile.req'), '--executor', 'chroot', '--progress', 'quiet'], {
        STRATA_ROOT: join(work, 'store'),
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Dockerfile.req:2: RUN --mount=type=ssh needs the agent "default"/);
    });
  });
});
