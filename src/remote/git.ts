import { spawn } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError, errnoCode } from '../errors/index.js';
import { redactUrl, type GitSource } from './source.js';

export interface GitFetchOptions {
  /** An empty directory for this checkout (its work tree goes in `tree/`, its git directory in `git/`). */
  dir: string;
  /** Keep `.git` in the work tree (`ADD --keep-git-dir`). */
  keepGitDir?: boolean | undefined;
  /**
   * Build secrets by id (host files): `GIT_AUTH_HEADER[.<host>]` (a whole Authorization value) or
   * `GIT_AUTH_TOKEN[.<host>]` (sent as Basic x-access-token) go to http(s) remotes, the host-scoped one first.
   */
  secrets?: Readonly<Record<string, string>> | undefined;
  /** ssh agent sockets by id (`--ssh`): `default`, else the only one, serves ssh remotes. */
  ssh?: Readonly<Record<string, string>> | undefined;
  /** The environment git runs in (PATH, HOME, proxies); strata adds what it needs and removes prompts. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  signal?: AbortSignal | undefined;
}

export interface GitCheckout {
  /** The checked-out directory the source names (the subdirectory when one was given). */
  dir: string;
  /** The full commit id. */
  commit: string;
  /** The git tree id of that directory: a content hash of every file, mode and link in it. */
  tree: string;
  /** The commit's committer time, in seconds. */
  commitTime: number;
}

/**
 * Checks out one ref of a repository with the host's git: a shallow fetch of exactly that ref (a commit id
 * falls back to a full fetch where the server refuses to serve it alone), then a checkout. A token goes in
 * an `http.<url>.extraheader` given through git's environment config (never on the command line, where
 * other users see it); every message is scrubbed of it, and of any password in the URL.
 */
export async function fetchGit(source: GitSource, options: GitFetchOptions): Promise<GitCheckout> {
  const shown = redactUrl(source.remote) + (source.ref !== undefined ? `#${source.ref}` : '');
  const tree = join(options.dir, 'tree');
  const gitDir = options.keepGitDir === true ? join(tree, '.git') : join(options.dir, 'git');
  await mkdir(tree, { recursive: true });
  const secrets = await gitSecrets(source, options);
  const env = gitEnvironment(source, options, secrets.header);
  const git = (args: string[], what: string): Promise<string> =>
    runGit(['--git-dir', gitDir, '--work-tree', tree, ...args], env, { shown, what, secrets: secrets.scrub, signal: options.signal });

  await runGit(['init', '-q', '--bare', '--template=', gitDir], env, { shown, what: 'init', secrets: secrets.scrub, signal: options.signal });
  if (options.keepGitDir === true) await git(['config', 'core.bare', 'false'], 'config');
  await git(['remote', 'add', 'origin', source.remote], 'remote add');
  const ref = source.ref ?? 'HEAD';
  try {
    await git(['fetch', '-q', '--depth=1', '--no-tags', 'origin', ref], `fetch ${ref}`);
  } catch (error) {
    // A commit id the server will not serve by itself (no allowReachableSHA1InWant): fetch every branch and tag.
    if (!/^[0-9a-f]{7,64}$/i.test(ref)) throw error;
    await git(['fetch', '-q', '--tags', 'origin', '+refs/heads/*:refs/remotes/origin/*'], `fetch ${ref}`);
    await git(['update-ref', 'FETCH_HEAD', `${ref}^{commit}`], `find commit ${ref}`);
  }
  const commit = (await git(['rev-parse', 'FETCH_HEAD^{commit}'], 'rev-parse')).trim();
  await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--force', commit], `checkout ${commit}`);
  if (options.keepGitDir === true) {
    // The kept .git must hold no credential: the remote as written may carry a password.
    await git(['remote', 'set-url', 'origin', redactUrl(source.remote).replace('***@', '')], 'remote set-url');
    await git(['update-ref', '-d', 'FETCH_HEAD'], 'update-ref');
  }
  const commitTime = Number((await git(['log', '-1', '--format=%ct', commit], 'log')).trim());
  let treeId: string;
  try {
    treeId = (await git(['rev-parse', `${commit}:${source.subdir}`], 'rev-parse')).trim();
  } catch (cause) {
    throw new StrataError('E_NOT_FOUND', `git source ${shown}: the repository has no directory ${JSON.stringify(source.subdir)}`, { cause });
  }
  const dir = source.subdir === '' ? tree : join(tree, ...source.subdir.split('/'));
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined || !st.isDirectory()) {
    throw new StrataError('E_NOT_FOUND', `git source ${shown}: ${JSON.stringify(source.subdir)} is not a directory in the repository`);
  }
  return { dir, commit, tree: treeId, commitTime };
}

/**
 * The commit a ref names on the remote, asked with `git ls-remote` (no fetch): a branch, a tag (peeled), a full
 * ref, or HEAD. Undefined for a commit id or anything the remote does not advertise; the caller then fetches.
 */
export async function resolveGitRef(source: GitSource, options: Omit<GitFetchOptions, 'dir' | 'keepGitDir'>): Promise<string | undefined> {
  const ref = source.ref ?? 'HEAD';
  if (/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(ref)) return ref;
  const shown = redactUrl(source.remote) + (source.ref !== undefined ? `#${source.ref}` : '');
  const secrets = await gitSecrets(source, options);
  const env = gitEnvironment(source, options, secrets.header);
  const out = await runGit(['ls-remote', source.remote, ref], env, { shown, what: `ls-remote ${ref}`, secrets: secrets.scrub, signal: options.signal });
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha !== undefined && name !== undefined) refs.set(name.trim(), sha.trim());
  }
  // git fetch's own order for a short name: the name itself, refs/<name>, tags, then branches.
  for (const name of [ref, `refs/${ref}`, `refs/tags/${ref}`, `refs/heads/${ref}`]) {
    const peeled = refs.get(`${name}^{}`);
    if (peeled !== undefined) return peeled;
    const direct = refs.get(name);
    if (direct !== undefined) return direct;
  }
  return undefined;
}

interface Secrets {
  /** The Authorization value sent to the remote's origin. */
  header: string | undefined;
  /** Every secret value, to be removed from anything shown. */
  scrub: string[];
}

async function gitSecrets(source: GitSource, options: Pick<GitFetchOptions, 'secrets'>): Promise<Secrets> {
  const scrub: string[] = [];
  const passwordMatch = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@:]*:([^/@]*)@/.exec(source.remote);
  if (passwordMatch?.[1]) scrub.push(passwordMatch[1], decodeURIComponent(passwordMatch[1]));
  if (source.ssh || !/^https?:/i.test(source.remote)) return { header: undefined, scrub };
  const read = async (id: string): Promise<string | undefined> => {
    const file = options.secrets?.[`${id}.${source.host}`] ?? options.secrets?.[id];
    if (file === undefined) return undefined;
    try {
      const value = (await readFile(file, 'utf8')).trim();
      return value === '' ? undefined : value;
    } catch (cause) {
      throw new StrataError('E_IO', `git source ${redactUrl(source.remote)}: cannot read the ${id} secret (${errnoCode(cause) ?? 'error'})`);
    }
  };
  // As BuildKit: GIT_AUTH_HEADER is the whole Authorization value; GIT_AUTH_TOKEN becomes Basic x-access-token.
  const header = await read('GIT_AUTH_HEADER');
  if (header !== undefined) {
    scrub.push(header, header.replace(/^\S+\s+/, ''));
    return { header, scrub };
  }
  const token = await read('GIT_AUTH_TOKEN');
  if (token === undefined) return { header: undefined, scrub };
  scrub.push(token, basicAuth(token));
  return { header: `basic ${basicAuth(token)}`, scrub };
}

function basicAuth(token: string): string {
  return Buffer.from(`x-access-token:${token}`).toString('base64');
}

function gitEnvironment(source: GitSource, options: Pick<GitFetchOptions, 'env' | 'ssh'>, authorization: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.env ?? {})) {
    // The caller's git configuration must not redirect where this git looks or what it runs.
    if (v !== undefined && !/^GIT_/.test(k) && k !== 'SSH_AUTH_SOCK') env[k] = v;
  }
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_ASKPASS = 'true';
  env.GCM_INTERACTIVE = 'never';
  // Only network transports: `ext::` and `file://` could run commands or read the host's files.
  env.GIT_ALLOW_PROTOCOL = 'http:https:git:ssh';
  env.GIT_CONFIG_NOSYSTEM = '1';
  const config: [string, string][] = [
    ['credential.helper', ''],
    ['core.autocrlf', 'false'],
    ['core.symlinks', 'true'],
  ];
  if (authorization !== undefined) {
    const base = new URL(source.remote);
    // For this origin only, as BuildKit sends it.
    config.push([`http.${base.protocol}//${base.host}/.extraheader`, `Authorization: ${authorization}`]);
  }
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  if (source.ssh) {
    const socket = options.ssh?.default ?? (Object.keys(options.ssh ?? {}).length === 1 ? Object.values(options.ssh ?? {})[0] : undefined);
    if (socket === undefined) {
      throw new StrataError('E_USAGE', `git source ${redactUrl(source.remote)} is reached over ssh, but the build has no ssh agent`, {
        hint: 'pass --ssh default (with SSH_AUTH_SOCK set) or --ssh default=SOCKET',
      });
    }
    env.SSH_AUTH_SOCK = socket;
    // BuildKit checks host keys only against known_hosts it is given; without one it accepts the host's.
    env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR';
  }
  return env;
}

interface RunContext {
  shown: string;
  what: string;
  secrets: readonly string[];
  signal: AbortSignal | undefined;
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s !== '') out = out.split(s).join('***');
  return out.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@\s]*@/g, '$1***@');
}

function runGit(args: string[], env: Record<string, string>, rc: RunContext): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, stdio: ['ignore', 'pipe', 'pipe'], signal: rc.signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let errSize = 0;
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      if (errSize < 16384) err.push(c);
      errSize += c.length;
    });
    child.on('error', (cause) => {
      if (errnoCode(cause) === 'ENOENT') {
        reject(new StrataError('E_BUILD', `git source ${rc.shown} needs the git program`, { hint: 'install git (apt-get install git)' }));
      } else if (rc.signal?.aborted === true) {
        reject(new StrataError('E_ABORTED', `git ${rc.what} of ${rc.shown} was aborted`));
      } else {
        reject(new StrataError('E_IO', `git ${rc.what} of ${rc.shown} failed: ${scrub(String(cause), rc.secrets)}`));
      }
    });
    child.on('close', (code) => {
      if (code === 0) {
        resolve(Buffer.concat(out).toString('utf8'));
        return;
      }
      const lines = scrub(Buffer.concat(err).toString('utf8'), rc.secrets)
        .split('\n')
        .map((l) => l.replace(/^(fatal|error): /, '').trim())
        .filter(Boolean);
      const why =
        lines.find((l) =>
          /couldn't find remote ref|not our ref|unable to access|repository .* not found|could not read|Connection refused|Could not resolve|Permission denied|Authentication failed/i.test(
            l,
          ),
        ) ??
        lines.at(-1) ??
        `exit ${code}`;
      const notFound = /couldn't find remote ref|not our ref|not a tree object|bad revision|unknown revision/i.test(why);
      reject(new StrataError(notFound ? 'E_NOT_FOUND' : 'E_IO', `git ${rc.what} of ${rc.shown} failed: ${why}`));
    });
  });
}
