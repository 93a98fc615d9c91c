import { StrataError } from '../errors/index.js';

/**
 * Users and groups as docker resolves them from an image's own /etc/passwd and /etc/group. Two rule sets:
 * - `resolveOwnership` for `COPY/ADD --chown` (BuildKit's llb user options and its file-op `readUser`): a numeric id
 *   or `root` needs no lookup, and a numeric user without a group gets GID = UID.
 * - `resolveExecUser` for `USER` as RUN (and the image) uses it (BuildKit's `GetUser`, then runc's
 *   `GetExecUser`): `uid:gid` both numeric needs no lookup; otherwise the user is looked up, a numeric user missing
 *   from /etc/passwd runs with GID 0, and a user without an explicit group gets its /etc/group memberships.
 * The passwd and group texts are the files' contents, or undefined when the image has no such file.
 *
 * A name that cannot be found is an error here, as in docker's classic builder ("unable to find user"). BuildKit's
 * file op instead falls back silently (uid/gid 0 for a missing user, the user's gid for a missing group), which
 * hides typos behind root-owned files; strata deliberately does not copy that.
 */

export interface PasswdEntry {
  name: string;
  password: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  password: string;
  gid: number;
  members: string[];
}

export interface Ownership {
  uid: number;
  gid: number;
}

export interface ExecUser extends Ownership {
  /** Supplementary groups from /etc/group memberships (only when the spec names no group). */
  additionalGids: number[];
  /** The passwd entry's home directory, or `/` when the user has none. */
  home: string;
}

const MAX_ID = 0xffff_ffff;

/** /etc/passwd lines `name:password:uid:gid:gecos:home:shell`; blank, comment and malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const fields of lines(text)) {
    const [name = '', password = '', uid = '', gid = '', gecos = '', home = '', shell = ''] = fields;
    const uidNumber = parseId(uid);
    const gidNumber = parseId(gid);
    if (name === '' || uidNumber === undefined || gidNumber === undefined) continue;
    out.push({ name, password, uid: uidNumber, gid: gidNumber, gecos, home, shell });
  }
  return out;
}

/** /etc/group lines `name:password:gid:member,member`; blank, comment and malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const fields of lines(text)) {
    const [name = '', password = '', gid = '', members = ''] = fields;
    const gidNumber = parseId(gid);
    if (name === '' || gidNumber === undefined) continue;
    out.push({
      name,
      password,
      gid: gidNumber,
      members: members
        .split(',')
        .map((m) => m.trim())
        .filter((m) => m !== ''),
    });
  }
  return out;
}

/**
 * `COPY --chown=SPEC`: `user`, `uid`, `user:group`, `uid:gid`, `user:gid`, `uid:group`. An empty spec is root.
 * Names are looked up (the first matching line wins); a missing file or name is an E_BUILD error naming both.
 */
export function resolveOwnership(spec: string, passwd?: string, group?: string): Ownership {
  if (spec === '') return { uid: 0, gid: 0 };
  const [userPart, groupPart] = splitSpec(spec);
  let uid: number;
  let gid: number;
  const userId = idOrRoot(userPart, spec, 'user');
  if (userId !== undefined) {
    uid = userId;
    gid = userId;
  } else {
    const entry = findUser(userPart, spec, passwd);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (groupPart !== undefined) {
    const groupId = idOrRoot(groupPart, spec, 'group');
    gid = groupId ?? findGroup(groupPart, spec, group).gid;
  }
  return { uid, gid };
}

/**
 * `USER SPEC` as a RUN step (or a container) runs it. An empty spec is root. The supplementary
 * groups always start with the primary group, so `id` shows what it shows under docker and buildah.
 */
export function resolveExecUser(spec: string, passwd?: string, group?: string): ExecUser {
  if (spec === '') return { uid: 0, gid: 0, additionalGids: [], home: '/' };
  const [userPart, groupPart] = splitSpec(spec);
  if (groupPart !== undefined) {
    const uid = idOrRoot(userPart, spec, 'user');
    const gid = idOrRoot(groupPart, spec, 'group');
    if (uid !== undefined && gid !== undefined) return { uid, gid, additionalGids: [gid], home: homeOf(uid, passwd) };
  }
  const users = passwd === undefined ? [] : parsePasswd(passwd);
  const numericUser = numericId(userPart, spec, 'user');
  const matched = users.find((u) => (numericUser !== undefined ? u.uid === numericUser : u.name === userPart));
  let uid: number;
  let gid = 0;
  let home = '/';
  if (matched !== undefined) {
    uid = matched.uid;
    gid = matched.gid;
    home = matched.home === '' ? '/' : matched.home;
  } else if (numericUser !== undefined) {
    uid = numericUser;
  } else {
    throw missingUser(userPart, spec, passwd === undefined);
  }
  if (groupPart !== undefined) {
    const numericGroup = numericId(groupPart, spec, 'group');
    const groups = group === undefined ? [] : parseGroup(group);
    const found = groups.find((g) => (numericGroup !== undefined ? g.gid === numericGroup : g.name === groupPart));
    if (found !== undefined) gid = found.gid;
    else if (numericGroup !== undefined) gid = numericGroup;
    else throw missingGroup(groupPart, spec, group === undefined);
    return { uid, gid, additionalGids: [gid], home };
  }
  // As docker and buildah run it: the primary group first, then every group that lists the user.
  const listed =
    matched === undefined || group === undefined
      ? []
      : parseGroup(group)
          .filter((g) => g.members.includes(matched.name))
          .map((g) => g.gid);
  const additionalGids = [...new Set([gid, ...listed])];
  return { uid, gid, additionalGids, home };
}

function* lines(text: string): Generator<string[]> {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    yield line.split(':');
  }
}

function parseId(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const value = Number(text);
  return value <= MAX_ID ? value : undefined;
}

function splitSpec(spec: string): [string, string | undefined] {
  const colon = spec.indexOf(':');
  const parts: [string, string | undefined] = colon === -1 ? [spec, undefined] : [spec.slice(0, colon), spec.slice(colon + 1)];
  if (parts[0] === '' || parts[1] === '') {
    throw new StrataError('E_BUILD', `user ${JSON.stringify(spec)} has an empty ${parts[0] === '' ? 'user' : 'group'} part`, {
      hint: 'write USER, or USER:GROUP, with names or numeric ids (for example 1000:1000 or app:app)',
    });
  }
  return parts;
}

/** A numeric id; digits only, and within 32 bits. */
function numericId(text: string, spec: string, what: 'user' | 'group'): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const value = parseId(text);
  if (value === undefined) {
    throw new StrataError('E_BUILD', `${what} id ${text} in ${JSON.stringify(spec)} is out of range`, {
      hint: `${what} ids are 32-bit: at most ${MAX_ID}`,
    });
  }
  return value;
}

/** BuildKit's parseUID: a numeric id, or `root` as 0, without any lookup. */
function idOrRoot(text: string, spec: string, what: 'user' | 'group'): number | undefined {
  return text === 'root' ? 0 : numericId(text, spec, what);
}

function findUser(name: string, spec: string, passwd: string | undefined): PasswdEntry {
  const entry = passwd === undefined ? undefined : parsePasswd(passwd).find((u) => u.name === name);
  if (entry === undefined) throw missingUser(name, spec, passwd === undefined);
  return entry;
}

function findGroup(name: string, spec: string, group: string | undefined): GroupEntry {
  const entry = group === undefined ? undefined : parseGroup(group).find((g) => g.name === name);
  if (entry === undefined) throw missingGroup(name, spec, group === undefined);
  return entry;
}

function homeOf(uid: number, passwd: string | undefined): string {
  const entry = passwd === undefined ? undefined : parsePasswd(passwd).find((u) => u.uid === uid);
  return entry === undefined || entry.home === '' ? '/' : entry.home;
}

function missingUser(name: string, spec: string, noFile: boolean): StrataError {
  if (noFile) {
    return new StrataError('E_BUILD', `cannot resolve user ${JSON.stringify(name)} (in ${JSON.stringify(spec)}): the image has no /etc/passwd`, {
      hint: 'use a numeric uid (and gid), or add the user to /etc/passwd in an earlier step',
    });
  }
  return new StrataError('E_BUILD', `user ${JSON.stringify(name)} (in ${JSON.stringify(spec)}) is not in the image's /etc/passwd`, {
    hint: 'check the name, use a numeric uid, or create the user in an earlier step',
  });
}

function missingGroup(name: string, spec: string, noFile: boolean): StrataError {
  if (noFile) {
    return new StrataError('E_BUILD', `cannot resolve group ${JSON.stringify(name)} (in ${JSON.stringify(spec)}): the image has no /etc/group`, {
      hint: 'use a numeric gid, or add the group to /etc/group in an earlier step',
    });
  }
  return new StrataError('E_BUILD', `group ${JSON.stringify(name)} (in ${JSON.stringify(spec)}) is not in the image's /etc/group`, {
    hint: 'check the name, use a numeric gid, or create the group in an earlier step',
  });
}
