/**
 * Token scopes (`repository:<name>:<actions>`). Order matters: some registries only look at the
 * first scope of a token request, so the scope being pushed to always comes first.
 */
export type RepositoryAction = 'pull' | 'push' | 'delete';

interface ParsedScope {
  resource: string; // `repository:<name>`
  actions: string[];
}

function parseScope(scope: string): ParsedScope {
  const last = scope.lastIndexOf(':');
  if (last < 0) return { resource: scope, actions: [] };
  return {
    resource: scope.slice(0, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== ''),
  };
}

function formatScope(s: ParsedScope): string {
  // push before pull, as docker and ggcr send it; other actions (delete, *) after.
  const rank = (a: string): number => (a === 'push' ? 0 : a === 'pull' ? 1 : 2);
  const actions = [...new Set(s.actions)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return `${s.resource}:${actions.join(',')}`;
}

export function repositoryScope(repository: string, actions: RepositoryAction[]): string {
  return formatScope({ resource: `repository:${repository}`, actions });
}

export function pullScopes(repository: string): string[] {
  return [repositoryScope(repository, ['pull'])];
}

/** Push and pull on the target first, then pull on every mount source. */
export function pushScopes(repository: string, mountFrom: readonly string[] = []): string[] {
  return mergeScopes([repositoryScope(repository, ['push', 'pull']), ...mountFrom.filter((r) => r !== repository).map((r) => repositoryScope(r, ['pull']))]);
}

/** Merges scope lists, keeping first-seen order and uniting the actions of the same resource. */
export function mergeScopes(...lists: ReadonlyArray<readonly string[]>): string[] {
  const byResource = new Map<string, ParsedScope>();
  for (const list of lists) {
    for (const scope of list) {
      const parsed = parseScope(scope);
      const existing = byResource.get(parsed.resource);
      if (existing) existing.actions.push(...parsed.actions);
      else byResource.set(parsed.resource, { resource: parsed.resource, actions: [...parsed.actions] });
    }
  }
  return [...byResource.values()].map(formatScope);
}

/** Whether a token granted for `granted` also serves a request needing `needed`. */
export function scopesCover(granted: readonly string[], needed: readonly string[]): boolean {
  const have = new Map<string, Set<string>>();
  for (const scope of granted) {
    const p = parseScope(scope);
    const set = have.get(p.resource) ?? new Set<string>();
    for (const a of p.actions) set.add(a);
    have.set(p.resource, set);
  }
  return needed.every((scope) => {
    const p = parseScope(scope);
    const set = have.get(p.resource);
    return set !== undefined && (set.has('*') || p.actions.every((a) => set.has(a)));
  });
}
