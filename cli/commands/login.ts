import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { StrataError, loginRegistry, logoutRegistry } from '../../src/internals.js';
import type { CliContext } from '../context.js';
import { apiContext, writeLine } from '../options.js';
import { addRegistryOptions, withRegistry, type RegistryFlags } from '../registry-io.js';

interface LoginFlags extends RegistryFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
}

async function readPassword(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  // As docker: the trailing newline of `echo $TOKEN |` is not part of the password.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/[\r\n]+$/, '');
}

/** `strata login` and `strata logout`, writing credentials as docker does. */
export function register(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command('login')
      .description('check credentials against a registry and store them (docker config.json, or its credential helper)')
      .argument('<registry>', 'registry host[:port], e.g. ghcr.io, docker.io, localhost:5000')
      .option('-u, --username <user>', 'username')
      .option('-p, --password <password>', 'password or token (insecure: it lands in the shell history; prefer --password-stdin)')
      .option('--password-stdin', 'read the password or token from standard input'),
  ).action(async (registry: string, flags: LoginFlags) => {
    if (flags.password !== undefined && flags.passwordStdin) throw new StrataError('E_USAGE', '--password and --password-stdin are mutually exclusive');
    if (flags.username === undefined || flags.username === '') {
      throw new StrataError('E_USAGE', `login to ${registry} needs a username`, { hint: 'strata login REGISTRY -u USER --password-stdin' });
    }
    let password: string;
    if (flags.passwordStdin) password = await readPassword(ctx.stdin);
    else if (flags.password !== undefined) {
      writeLine(ctx.stderr, 'WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
      password = flags.password;
    } else throw new StrataError('E_USAGE', `login to ${registry} needs a password`, { hint: 'pipe it in with --password-stdin' });
    const username = flags.username;
    const api = apiContext(ctx);
    const result = await withRegistry(ctx, api, flags, (io) => loginRegistry(registry, username, password, io));
    writeLine(ctx.stderr, `Credentials for ${result.registry} stored in ${result.storedIn}`);
    writeLine(ctx.stdout, 'Login Succeeded');
  });

  program
    .command('logout')
    .description('remove the stored credentials of a registry')
    .argument('<registry>', 'registry host[:port]')
    .action(async (registry: string) => {
      const api = apiContext(ctx);
      const result = await withRegistry(ctx, api, { progress: 'quiet' }, (io) => logoutRegistry(registry, io));
      writeLine(ctx.stdout, result.removed ? `Removing login credentials for ${result.registry}` : `Not logged in to ${result.registry}`);
    });
}
